"""Download a checkpoint named in ``checkpoints.lock`` and prove its bytes before using them.

The file is streamed into ``NAME.part`` next to its final place and renamed only after its
size and sha256 match the lock, so a half-downloaded or corrupt checkpoint never sits under
the name loaders look for. A dropped transfer keeps ``NAME.part`` and resumes it with an HTTP
``Range`` request (within one call via retries, or on the next call), because the official
checkpoints are hundreds of MB. Only the standard library talks to the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..core.digests import CHUNK, hash_file, sha256_file
from ..core.errors import DownloadError, IntegrityError, LockError, OutputExistsError
from ..core.variants import resolve
from .lock import LockEntry, lock_entry
from .lock import pin as pin_entry

BASE_URL_ENV = "SAM2_ONNX_BASE_URL"
_USER_AGENT = "sam2-onnx-exporter"


@dataclass(frozen=True)
class FetchResult:
    path: Path  # final file
    bytes: int
    sha256: str
    downloaded: bool  # False when an existing verified file was reused
    pinned: bool  # True when this call recorded the digest into the lock
    resumed_from: int  # bytes already in NAME.part when the download started (0 if fresh)


class _Interrupted(Exception):
    """The body ended before its Content-Length: resumable, like a dropped connection."""


class _Restart(Exception):
    """The server cannot continue our ``.part`` (416 / wrong Content-Range): start from zero."""


# Failures after the connection was made; everything here is worth a resumed retry.
_TRANSIENT = (_Interrupted, http.client.HTTPException, ConnectionError, TimeoutError)


def checkpoint_url(entry: LockEntry, base_url: str | None) -> str:
    """``base_url`` argument, else ``$SAM2_ONNX_BASE_URL``, else the URL in the lock.

    A base is a mirror directory: the lock's file name is appended to it.
    """
    base = base_url or os.environ.get(BASE_URL_ENV)
    if not base:
        return entry.url
    return base.rstrip("/") + "/" + entry.filename


def _host_port(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _open(url: str, offset: int, timeout: float):
    """GET ``url`` (from ``offset`` when > 0); one-line DownloadError when there is no response.

    A 416 comes back as the HTTPError itself, since for a resume it can mean "already complete".
    """
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return exc
        exc.close()
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(
            f"{url}: cannot connect to {_host_port(url)} ({exc.reason}); "
            f"check --base-url/${BASE_URL_ENV} or the network"
        ) from None


def _total_from_416(resp) -> int | None:
    """``Content-Range: bytes */LEN`` on a 416 says how long the server's file is."""
    value = resp.headers.get("Content-Range", "")
    _, _, total = value.rpartition("/")
    return int(total) if total.isdigit() else None


def _transfer(url: str, part: Path, expected: int, timeout: float, bar: tqdm) -> str:
    """One request: continue or restart ``part``; returns the sha256 of the whole file."""
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(url, offset, timeout)
    with resp:
        if resp.status == 416:
            # Our .part may already hold the whole file (a previous call died before the rename).
            if offset == (expected or _total_from_416(resp)):
                return sha256_file(part)
            raise _Restart(f"server cannot resume at byte {offset} (HTTP 416)")
        h = hashlib.sha256()
        if resp.status == 206:
            start = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
            if start != str(offset):
                raise _Restart(f"server answered Range with {resp.headers.get('Content-Range')!r}")
            hash_file(part, h)  # the digest covers the whole file, prefix included
            mode = "ab"
        else:  # 200: the server ignored Range, so the body is the whole file
            offset, mode = 0, "wb"
            bar.reset()
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if length is not None:
            bar.total = offset + length
            bar.refresh()
        received = 0
        with open(part, mode) as f:
            while chunk := resp.read(CHUNK):
                f.write(chunk)
                h.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if length is not None and received != length:
            raise _Interrupted(f"body ended after {received} of {length} bytes")
        return h.hexdigest()


def _download(url: str, part: Path, expected: int, *, timeout: float, retries: int, progress: bool) -> str:
    """Fill ``part`` from ``url`` with resume and retries; returns its sha256."""
    offset = part.stat().st_size if part.exists() else 0
    restarted = False
    attempt = 0
    # delay: a request that fails at once (404, refused) prints its error line, not a bar
    with tqdm(
        total=expected or None,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=part.name.removesuffix(".part"),
        file=sys.stderr,
        disable=not progress,
        delay=0.5,
    ) as bar:
        while True:
            before = part.stat().st_size if part.exists() else 0
            try:
                return _transfer(url, part, expected, timeout, bar)
            except _Restart as exc:
                # Our bytes cannot be continued (stale or foreign .part): one clean restart.
                part.unlink(missing_ok=True)
                if restarted:
                    raise DownloadError(f"{url}: {exc}; try again later") from None
                restarted = True
                bar.reset()
            except _TRANSIENT as exc:
                if attempt >= retries:
                    have = part.stat().st_size if part.exists() else 0
                    raise DownloadError(
                        f"{url}: transfer interrupted ({exc.__class__.__name__}: {exc}) after "
                        f"{retries} retries; {have} bytes kept in {part}, rerun to resume"
                    ) from None
                attempt += 1
                # A drop after progress means the server is alive: resume at once. Otherwise
                # back off a little so a briefly overloaded server is not hammered.
                if (part.stat().st_size if part.exists() else 0) == before:
                    time.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))


def _verify(name: str, part: Path, entry: LockEntry, sha: str) -> int:
    """Size then digest against the lock; a failing ``.part`` is deleted (never resume junk)."""
    size = part.stat().st_size
    try:
        if entry.bytes and size != entry.bytes:
            raise IntegrityError(f"{name}: size mismatch: expected {entry.bytes} bytes, got {size}")
        if entry.pinned and sha != entry.sha256:
            raise IntegrityError(f"{name}: sha256 mismatch: expected {entry.sha256}, got {sha}")
    except IntegrityError:
        part.unlink(missing_ok=True)
        raise
    return size


def _existing_matches(path: Path, entry: LockEntry) -> bool:
    """Only a pinned entry can vouch for a file already on disk; size first, it is cheap."""
    if not entry.pinned or (entry.bytes and path.stat().st_size != entry.bytes):
        return False
    return sha256_file(path) == entry.sha256


def fetch(
    variant: str,
    dest: Path,
    *,
    base_url: str | None = None,
    pin: bool = False,
    force: bool = False,
    lock_path: Path | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = 3,
) -> FetchResult:
    """Download ``variant``'s checkpoint into ``dest`` and verify it against the lock.

    ``pin`` records size and digest for an unpinned entry (an existing pin is only checked,
    never replaced); ``force`` replaces a file in the way that does not verify.
    """
    entry = lock_entry(resolve(variant).checkpoint, lock_path)
    if not entry.pinned and not pin:
        raise LockError(
            f"{entry.variant}: the lock has no sha256 digest for it; rerun with "
            f"--pin to record the digest of the downloaded file"
        )
    dest = Path(dest)
    final = dest / entry.filename
    if final.exists():
        if _existing_matches(final, entry):
            return FetchResult(final, final.stat().st_size, entry.sha256, False, False, 0)
        if not force:
            raise OutputExistsError(
                f"{final}: exists and does not match the lock or cannot be verified; use --force to download again"
            )
    url = checkpoint_url(entry, base_url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(
            f"{url}: only http:// and https:// URLs are supported; check --base-url/${BASE_URL_ENV} or the lock"
        )
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / (entry.filename + ".part")
    resumed_from = part.stat().st_size if part.exists() else 0
    sha = _download(url, part, entry.bytes, timeout=timeout, retries=retries, progress=progress)
    size = _verify(entry.filename, part, entry, sha)
    pinned = False
    if pin and not entry.pinned:
        pin_entry(entry.variant, size, sha, lock_path)
        pinned = True
    os.replace(part, final)  # atomic: the old file (with --force) stays until this point
    return FetchResult(final, size, sha, True, pinned, resumed_from)
