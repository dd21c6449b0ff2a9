"""``sam2-onnx serve``: host the click-to-segment page, onnxruntime-web and one model folder.

Routes (GET and HEAD only; anything else is 404, so no path outside these can be read):

- ``/``, ``/static/<file>``: the page (``exporter/web/static``);
- ``/ort/<file>``: onnxruntime-web's ES module and its wasm binaries (``node_modules``);
- ``/model/<file>``: the model folder's ``manifest.json`` and the graphs of the served precision,
  verified against the manifest's sha256 when the server starts; for a release folder
  (``sam2-onnx release``: ``SHA256SUMS``), every file it lists, verified against it, so that a
  consumer's own page can fetch ``encoder.ort`` and ``decoder.onnx`` as from a model hub;
- ``/config.json``: what the page needs to know, built here from the contract and the manifest
  (graph files, I/O names, image and mask sizes, normalisation, threshold), so the page declares
  none of it itself.

Every response carries ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``: without cross-origin isolation the browser has
no SharedArrayBuffer, and onnxruntime-web falls back to one wasm thread.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..core import contract as C
from ..core.digests import SUMS_FILE, verify_release
from ..core.errors import InputError, ManifestError, SetupError
from ..core.manifest import GRAPHS, MANIFEST_FILE, io_spec, manifest_profile, read_manifest, verify_files
from ..runtime.sessions import PRECISIONS, graph_file

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ORT_PACKAGE = HERE / "node_modules" / "onnxruntime-web"
ORT_MODULE = "ort.webgpu.min.mjs"  # the WebGPU + wasm build, as NimbusImage imports it
DEFAULT_PORT = 8765
FORMATS = ("onnx", "ort")  # which graph files the page loads: ONNX, or ORT format (release folders)

HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".onnx": "application/octet-stream",
    ".ort": "application/octet-stream",
}


def ort_web_version() -> str:
    """The installed onnxruntime-web version; SetupError when it is not installed."""
    try:
        return json.loads((ORT_PACKAGE / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        raise SetupError(
            f"onnxruntime-web is not installed in {ORT_PACKAGE.parent}: run scripts/bootstrap.sh "
            f"(or `npm ci --prefix {HERE}`)"
        ) from None


def _ort_files() -> dict[str, Path]:
    """onnxruntime-web's loadable files: the ES modules and the wasm binaries they fetch."""
    dist = ORT_PACKAGE / "dist"
    files = {p.name: p for p in dist.iterdir() if p.suffix in (".mjs", ".wasm")}
    if ORT_MODULE not in files:
        raise SetupError(f"{dist}: no {ORT_MODULE}; reinstall onnxruntime-web (`npm ci --prefix {HERE}`)")
    return files


def page_config(manifest: dict, precision: str, files: dict[str, str], ort_version: str) -> dict:
    """The JSON the page starts from (``/config.json``)."""
    return {
        "variant": manifest["variant"]["name"],
        "precision": precision,
        "precisions": [p for p in PRECISIONS if _has_precision(manifest, p)],
        "graphs": {role: f"/model/{name}" for role, name in files.items()},
        "ort": {"module": f"/ort/{ORT_MODULE}", "wasm_paths": "/ort/", "version": ort_version},
        "io": io_spec(),
        "contract": {
            "image_size": C.IMAGE_SIZE,
            "low_res_size": C.LOW_RES_SIZE,
            "pixel_mean": list(C.PIXEL_MEAN),
            "pixel_std": list(C.PIXEL_STD),
            "mask_threshold": C.MASK_THRESHOLD,
            "low_res_clamp": C.LOW_RES_CLAMP,
            "labels": {
                "pad": C.LABEL_PAD,
                "background": C.LABEL_BG,
                "foreground": C.LABEL_FG,
                "box_top_left": C.LABEL_BOX_TL,
                "box_bottom_right": C.LABEL_BOX_BR,
            },
        },
    }


def _has_precision(manifest: dict, precision: str) -> bool:
    return all(graph_file(role, precision, manifest) in manifest["files"] for role in GRAPHS)


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        found = self.server.routes.get(path)
        if found is None:
            self.send_response(HTTPStatus.NOT_FOUND)
            self._headers("text/plain; charset=utf-8", 0)
            return
        data = found if isinstance(found, bytes) else None
        size = len(data) if data is not None else found.stat().st_size
        kind = ".json" if data is not None else found.suffix
        self.send_response(HTTPStatus.OK)
        self._headers(CONTENT_TYPES.get(kind, "application/octet-stream"), size)
        if not body:
            return
        try:
            if data is not None:
                self.wfile.write(data)
                return
            with open(found, "rb") as f:
                while chunk := f.read(1 << 20):
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the browser went away (reload, closed tab)
            self.close_connection = True

    def _headers(self, content_type: str, length: int) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for key, value in HEADERS.items():
            self.send_header(key, value)
        self.end_headers()


class ModelServer(ThreadingHTTPServer):
    """An HTTP server for one model folder at one precision; ``url`` is where the page is."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], routes: dict[str, Path | bytes], verbose: bool = False):
        self.routes = routes
        self.verbose = verbose
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (tests, benchmarks); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="sam2-onnx-serve", daemon=True)
        thread.start()
        return thread


def make_server(
    model_dir: str | Path,
    precision: str = "fp32",
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    verbose: bool = False,
    graph_format: str = "onnx",
) -> ModelServer:
    """Check the folder and the installed page assets, then bind (port 0: any free port).

    ``graph_format="ort"`` makes the page load the ``.ort`` copies, which only a release folder
    has.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if graph_format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, not {graph_format!r}")
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    profile = manifest_profile(manifest)
    if profile.name != C.DEFAULT_PROFILE:  # the page feeds and reads the default contract
        raise InputError(
            f"{model_dir}: exported with the {profile.name} I/O profile; the page serves {C.DEFAULT_PROFILE} folders"
        )
    if profile.static:  # the page sends any number of clicks
        raise InputError(
            f"{model_dir}: exported with --static-shapes (for ONNX Runtime Mobile); the page serves "
            "folders exported without it"
        )
    if not _has_precision(manifest, precision):
        have = [p for p in PRECISIONS if _has_precision(manifest, p)]
        raise ManifestError(f"{model_dir}: no {precision} graphs (this folder has {', '.join(have) or 'none'})")
    files = {role: graph_file(role, precision, manifest) for role in GRAPHS}
    external = [f for f in files.values() if "external_data" in manifest["files"][f]]
    if external:  # the page creates its sessions from one URL per graph
        raise InputError(
            f"{model_dir}: {', '.join(external)} keep their weights in external-data files, which the page "
            "does not load; export without --external-data"
        )
    if (model_dir / SUMS_FILE).is_file():  # a release folder: serve (and verify) all of it
        served = verify_release(model_dir)
    else:
        verify_files(model_dir, manifest, list(files.values()))
        served = [*files.values(), MANIFEST_FILE]
    if graph_format == "ort":
        files = {role: str(Path(name).with_suffix(".ort")) for role, name in files.items()}
        missing = [name for name in files.values() if name not in served]
        if missing:
            raise ManifestError(
                f"{model_dir}: no {', '.join(missing)}; .ort copies are in release folders (sam2-onnx release)"
            )
    version = ort_web_version()
    routes = _routes(model_dir, served)
    routes["/config.json"] = json.dumps(page_config(manifest, precision, files, version)).encode()
    return _bind(host, port, routes, verbose)


def file_server(folder: str | Path, names: list[str], host: str = "127.0.0.1", port: int = 0) -> ModelServer:
    """A server for ``names`` of ``folder`` as ``/model/<name>``, with onnxruntime-web and the
    static files but no page config: for code that loads graph files itself (graph_check.py)."""
    ort_web_version()
    folder = Path(folder)
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise InputError(f"{folder}: no {', '.join(missing)}")
    return _bind(host, port, _routes(folder, names), False)


def _routes(folder: Path, names: list[str]) -> dict[str, Path | bytes]:
    routes: dict[str, Path | bytes] = {"/": STATIC / "index.html"}
    routes |= {f"/static/{p.name}": p for p in STATIC.iterdir() if p.is_file()}
    routes |= {f"/ort/{name}": p for name, p in _ort_files().items()}
    routes |= {f"/model/{name}": folder / name for name in names}
    return routes


def _bind(host: str, port: int, routes: dict[str, Path | bytes], verbose: bool) -> ModelServer:
    try:
        return ModelServer((host, port), routes, verbose)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port") from None
