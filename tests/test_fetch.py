"""fetch against a real local HTTP server: resume, retries, integrity, pinning, errors."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exporter.checkpoints.fetch import BASE_URL_ENV, checkpoint_url, fetch
from exporter.checkpoints.lock import LockEntry, read_lock, write_lock
from exporter.core.errors import DownloadError, IntegrityError, LockError, OutputExistsError

PAYLOAD = random.Random(0).randbytes(3 * 1024 * 1024)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
PINNED, UNPINNED = "sam2.1_hiera_tiny.pt", "sam2_hiera_tiny.pt"
K = 1024 * 1024 + 123  # where the server drops the connection: not on a chunk boundary


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.root``; honours ``Range: bytes=N-``; misbehaves when told to."""

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        file = srv.root / self.path.lstrip("/")
        if self.path in srv.missing or not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        start = int(rng.removeprefix("bytes=").rstrip("-")) if rng and srv.ranges else 0
        if start >= len(data) and rng:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start or (rng and srv.ranges) else 200)
        if rng and srv.ranges:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.drops_left > 0:  # HTTP/1.0: returning closes the socket, short of Content-Length
            srv.drops_left -= 1
            body = body[: srv.drop_after]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), Handler)
        self.root, self.log, self.missing = root, [], set()
        self.drop_after, self.drops_left, self.ranges = 0, 0, True
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def drop(self, after: int, times: int = 1):
        self.drop_after, self.drops_left = after, times


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    (root / PINNED).write_bytes(PAYLOAD)
    (root / UNPINNED).write_bytes(PAYLOAD)
    srv = Server(root)
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def lock(tmp_path):
    path = tmp_path / "checkpoints.lock"
    write_lock(
        {
            "sam2.1_hiera_tiny": LockEntry(
                "sam2.1_hiera_tiny", f"https://example.invalid/{PINNED}", PINNED, len(PAYLOAD), SHA
            ),
            "sam2_hiera_tiny": LockEntry("sam2_hiera_tiny", f"https://example.invalid/{UNPINNED}", UNPINNED, 0, ""),
        },
        path,
    )
    return path


@pytest.fixture
def get(server, lock, tmp_path, monkeypatch):
    """``fetch`` into tmp/out with the test lock, the local server and fast failure."""
    monkeypatch.delenv(BASE_URL_ENV, raising=False)

    def call(variant="sam2.1_hiera_tiny", **kw):
        kw = {"base_url": server.url, "lock_path": lock, "progress": False, "timeout": 5.0, **kw}
        return fetch(variant, tmp_path / "out", **kw)

    return call


def out(tmp_path, name=PINNED) -> Path:
    return tmp_path / "out" / name


def test_downloads_and_verifies(get, tmp_path, server):
    result = get()
    assert result.path == out(tmp_path)
    assert hashlib.sha256(result.path.read_bytes()).hexdigest() == SHA
    assert (result.bytes, result.sha256, result.downloaded, result.pinned) == (len(PAYLOAD), SHA, True, False)
    assert result.resumed_from == 0
    assert not out(tmp_path, PINNED + ".part").exists()
    assert server.log == [(f"/{PINNED}", None)]


def test_reuses_verified_file_without_network(get, server):
    get()
    server.log.clear()
    result = get()
    assert not result.downloaded and result.sha256 == SHA
    assert server.log == []


def test_resumes_within_one_call_after_drop(get, server, capsys):
    server.drop(after=K)
    result = get(retries=3, progress=True)
    assert PINNED in capsys.readouterr().err  # one tqdm bar on stderr, nothing on stdout
    assert result.sha256 == SHA and result.resumed_from == 0
    assert server.log == [(f"/{PINNED}", None), (f"/{PINNED}", f"bytes={K}-")]
    assert hashlib.sha256(result.path.read_bytes()).hexdigest() == SHA


def test_resumes_across_calls(get, server, tmp_path):
    server.drop(after=K)
    with pytest.raises(DownloadError, match="rerun to resume"):
        get(retries=0)
    part = out(tmp_path, PINNED + ".part")
    assert part.stat().st_size == K and not out(tmp_path).exists()
    result = get(retries=0)
    assert server.log[-1] == (f"/{PINNED}", f"bytes={K}-")
    assert result.resumed_from == K and result.sha256 == SHA and not part.exists()


def test_gives_up_when_every_request_drops_and_keeps_part(get, server, tmp_path):
    server.drop(after=K, times=99)
    with pytest.raises(DownloadError) as err:
        get(retries=1)
    assert err.value.exit_code == 4 and len(server.log) == 2
    assert out(tmp_path, PINNED + ".part").stat().st_size == 2 * K


def test_complete_part_is_finished_by_416(get, server, tmp_path):
    (tmp_path / "out").mkdir()
    out(tmp_path, PINNED + ".part").write_bytes(PAYLOAD)
    result = get()
    assert server.log == [(f"/{PINNED}", f"bytes={len(PAYLOAD)}-")]
    assert result.resumed_from == len(PAYLOAD) and result.sha256 == SHA


def test_server_ignoring_range_restarts_from_zero(get, server, tmp_path):
    (tmp_path / "out").mkdir()
    out(tmp_path, PINNED + ".part").write_bytes(b"x" * 1000)  # junk that must not survive
    server.ranges = False
    result = get()
    assert server.log == [(f"/{PINNED}", "bytes=1000-")]
    assert result.sha256 == SHA and result.resumed_from == 1000


def test_part_longer_than_file_restarts_once(get, server, tmp_path):
    (tmp_path / "out").mkdir()
    out(tmp_path, PINNED + ".part").write_bytes(PAYLOAD + b"stale")
    assert get().sha256 == SHA
    assert server.log == [(f"/{PINNED}", f"bytes={len(PAYLOAD) + 5}-"), (f"/{PINNED}", None)]


def test_corrupt_bytes_raise_sha_mismatch(get, server, tmp_path):
    (server.root / PINNED).write_bytes(bytes(len(PAYLOAD)))
    with pytest.raises(IntegrityError, match="sha256 mismatch") as err:
        get()
    assert err.value.exit_code == 3
    assert not out(tmp_path).exists() and not out(tmp_path, PINNED + ".part").exists()


@pytest.mark.parametrize("served", [PAYLOAD + b"extra", PAYLOAD[:-10]])
def test_wrong_size_raises_size_mismatch(get, server, tmp_path, served):
    (server.root / PINNED).write_bytes(served)
    with pytest.raises(IntegrityError, match=f"size mismatch: expected {len(PAYLOAD)} bytes, got {len(served)}"):
        get()
    assert not out(tmp_path).exists() and not out(tmp_path, PINNED + ".part").exists()


def test_http_404(get, server, tmp_path):
    server.missing.add(f"/{PINNED}")
    with pytest.raises(DownloadError, match=f"{PINNED}: HTTP 404") as err:
        get()
    assert "\n" not in str(err.value) and not out(tmp_path).exists()


def test_refused_connection(get, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=f"cannot connect to 127.0.0.1:{port}.*{BASE_URL_ENV}"):
        get(base_url=f"http://127.0.0.1:{port}", retries=0)
    assert not out(tmp_path).exists()


def test_only_http_urls(get):
    with pytest.raises(DownloadError, match="only http"):
        get(base_url="ftp://127.0.0.1/x")


def test_unpinned_refused_without_pin(get, server, tmp_path):
    with pytest.raises(LockError, match="--pin"):
        get("sam2_hiera_tiny")
    assert server.log == [] and not (tmp_path / "out").exists()


def test_pin_records_digest(get, lock, tmp_path):
    result = get("sam2_hiera_tiny", pin=True)
    assert result.pinned and result.path == out(tmp_path, UNPINNED)
    entry = read_lock(lock)["sam2_hiera_tiny"]
    assert (entry.bytes, entry.sha256) == (len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())


def test_pin_on_pinned_entry_only_verifies(get, lock, server):
    (server.root / PINNED).write_bytes(bytes(len(PAYLOAD)))
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        get(pin=True)
    assert read_lock(lock)["sam2.1_hiera_tiny"].sha256 == SHA


def test_existing_different_file_needs_force(get, tmp_path):
    out(tmp_path).parent.mkdir()
    out(tmp_path).write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="--force"):
        get()
    assert out(tmp_path).read_bytes() == b"mine"
    result = get(force=True)
    assert result.downloaded and out(tmp_path).read_bytes() == PAYLOAD


def test_force_keeps_old_file_when_new_one_fails(get, server, tmp_path):
    out(tmp_path).parent.mkdir()
    out(tmp_path).write_bytes(b"mine")
    server.missing.add(f"/{PINNED}")
    with pytest.raises(DownloadError):
        get(force=True)
    assert out(tmp_path).read_bytes() == b"mine"


def test_base_url_from_env_and_alias(get, server, tmp_path, monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, server.url + "/")
    result = get("tiny", base_url=None)
    assert result.path == out(tmp_path) and result.sha256 == SHA
    assert server.log == [(f"/{PINNED}", None)]


def test_checkpoint_url_precedence(monkeypatch):
    entry = LockEntry("v", "https://lock.example/a/f.pt", "f.pt")
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert checkpoint_url(entry, None) == "https://lock.example/a/f.pt"
    monkeypatch.setenv(BASE_URL_ENV, "http://env.example/m/")
    assert checkpoint_url(entry, None) == "http://env.example/m/f.pt"
    assert checkpoint_url(entry, "http://arg.example") == "http://arg.example/f.pt"


def test_url_from_lock_entry(server, tmp_path, monkeypatch):
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    lock = tmp_path / "direct.lock"
    write_lock(
        {"sam2.1_hiera_tiny": LockEntry("sam2.1_hiera_tiny", f"{server.url}/{PINNED}", PINNED, len(PAYLOAD), SHA)}, lock
    )
    result = fetch("tiny", tmp_path / "out", lock_path=lock, progress=False, timeout=5.0)
    assert result.sha256 == SHA


# --- the same through the real command line: messages and exit codes ---------------------


def test_cli_fetch_success_and_exit_codes(server, lock, tmp_path, monkeypatch):
    from .fixtures import run_cli

    dest = tmp_path / "cli"
    monkeypatch.setenv(BASE_URL_ENV, server.url)  # the env var reaches the subprocess
    ok = run_cli("fetch", "tiny", "--dest", dest, "--lock", lock)
    assert ok.returncode == 0, ok.stderr
    assert f"sha256 {SHA}" in ok.stdout and (dest / PINNED).read_bytes() == PAYLOAD

    (server.root / PINNED).write_bytes(PAYLOAD[:-1] + b"\x00")
    bad = run_cli("fetch", "tiny", "--dest", tmp_path / "cli2", "--lock", lock, "--base-url", server.url)
    assert bad.returncode == 3 and "sha256 mismatch" in bad.stderr
    assert not (tmp_path / "cli2" / PINNED).exists()

    server.missing.add(f"/{PINNED}")
    gone = run_cli("fetch", "tiny", "--dest", tmp_path / "cli3", "--lock", lock)
    assert gone.returncode == 4 and "HTTP 404" in gone.stderr
    assert gone.stderr.startswith("error: ") and gone.stderr.count("\n") == 1

    unpinned = run_cli("fetch", "sam2_hiera_tiny", "--dest", tmp_path / "cli4", "--lock", lock)
    assert unpinned.returncode == 1 and "--pin" in unpinned.stderr
    pinned = run_cli("fetch", "sam2_hiera_tiny", "--dest", tmp_path / "cli4", "--lock", lock, "--pin")
    assert pinned.returncode == 0, pinned.stderr
    assert read_lock(lock)["sam2_hiera_tiny"].sha256 == SHA
