"""Graph files run one by one in onnxruntime-web in headless Chromium, on raw feeds: whether a
browser can load a file on an execution provider, and what it computes there.

The page code is ``static/graphs.js`` (a session per file, on the provider asked for), evaluated
on the server's blank page, so nothing of the click-to-segment page takes part: this is what a
consumer's own page does with a release's files. ``release/browser_check.py`` compares the
outputs with the Python onnxruntime's.
"""

from __future__ import annotations

import base64
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from .browser import chromium, chromium_path
from .predictor import EXECUTION_PROVIDERS
from .server import file_server, ort_web_version

Feeds = dict[str, np.ndarray]

_RUN = "a => import('/static/graphs.js').then(m => m.runGraph(a))"


def require_browser() -> None:
    """SetupError unless Chromium and onnxruntime-web are installed."""
    chromium_path()
    ort_web_version()


@dataclass
class GraphRun:
    """One file on one execution provider: ``outputs`` (one dict per feed) when ``ok``, else
    the ``stage`` that failed ("adapter", "load" or "run") and onnxruntime-web's ``error``."""

    ok: bool
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    stage: str | None = None
    error: str | None = None
    adapter: str | None = None  # the WebGPU adapter's vendor / architecture / description


def _encode(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"dtype": str(a.dtype), "dims": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}


def _decode(t: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(t["data"]), np.dtype(t["dtype"])).reshape(t["dims"])


class BrowserGraphs:
    """Files of ``folder`` (``names``) served to one headless Chromium, each run in a page of its
    own; ``ep`` is "wasm" or "webgpu" (Chromium's software adapter where there is no GPU). Use
    as a context manager."""

    def __init__(self, folder: str | Path, names: list[str], ep: str = "wasm", threads: int | None = None):
        if ep not in EXECUTION_PROVIDERS:
            raise InputError(f"ep must be one of {', '.join(EXECUTION_PROVIDERS)}, not {ep!r}")
        self.ep, self.threads, self.names = ep, threads, list(names)
        self.ort_web = ort_web_version()
        self._stack = ExitStack()
        try:
            server = file_server(folder, self.names)
            server.start()
            self._stack.callback(server.server_close)
            self._stack.callback(server.shutdown)
            self._browser = self._stack.enter_context(chromium(software_webgpu=ep == "webgpu"))
            self.browser = f"chromium {self._browser.version}"
            self._url = server.url + "static/blank.html"
        except BaseException:
            self._stack.close()
            raise

    def __enter__(self) -> BrowserGraphs:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def run(self, name: str, runs: list[Feeds]) -> GraphRun:
        """``name`` loaded once on this provider and run on each feed of ``runs``."""
        if name not in self.names:
            raise InputError(f"{name} is not served here ({', '.join(self.names)})")
        args = {
            "url": f"/model/{name}",
            "ep": self.ep,
            "threads": self.threads or 0,
            "runs": [{k: _encode(v) for k, v in feeds.items()} for feeds in runs],
        }
        # a page of its own: a session that fails to load can leave onnxruntime-web's WebGPU
        # provider refusing every later one in that page ("another WebGPU EP inference session
        # is being created")
        page = self._browser.new_page()
        try:
            page.goto(self._url)
            out = page.evaluate(_RUN, args)
        finally:
            page.close()
        if not out["ok"]:
            return GraphRun(False, stage=out["stage"], error=out["error"], adapter=out.get("adapter"))
        outputs = [{k: _decode(t) for k, t in read.items()} for read in out["outputs"]]
        return GraphRun(True, outputs, adapter=out["adapter"])
