"""BrowserPredictor: the page's model in headless Chromium behind SAM2OnnxPredictor's stateless
API (``embed``, ``encode_tensor``, ``decode``), so that the parity engine can hold the browser
to the official predictor exactly as it holds the Python runtime.

Each call goes through ``window.sam2app`` (``static/app.js``): ``embed`` opens the image with
the page's file input, as a person would (a PNG made here from the array, so the page decodes
the bytes it was given); ``decode`` runs ``sam2app.predict`` and reads each mask back
separately. Arrays cross as base64 float32.
"""

from __future__ import annotations

import base64
import io
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import contract as C
from ..core.errors import InputError, NotReadyError
from ..runtime.inputs import as_rgb, prepare_prompts
from .browser import chromium
from .server import make_server

EXECUTION_PROVIDERS = ("wasm", "webgpu")
PAGE_PROVIDERS = (*EXECUTION_PROVIDERS, "auto")  # auto: the page's choice (static/sam.js chooseProvider)


def _floats(text: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32).reshape(shape)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.float32).tobytes()).decode()


@dataclass(frozen=True)
class PageEmbedding:
    """The image open in the page."""

    orig_hw: tuple[int, int]  # original (height, width)
    input: np.ndarray  # [1, 3, 1024, 1024] float32: the page's encoder input
    serial: int  # which embed() call opened it: decode() refuses an image the page no longer holds


class BrowserPredictor:
    """The click-to-segment page's model, driven from Python.

    Args:
        model_dir: an exported folder (verified against its manifest by the server).
        precision: which graphs the page loads.
        ep: the encoder's execution provider in the page: ``"wasm"`` (multi-threaded),
            ``"webgpu"`` (Chromium's software adapter where there is no GPU), or ``"auto"``,
            the page's own choice: WebGPU when the adapter can run the graphs, else wasm.
        threads: wasm threads (default: all cores).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, model_dir: str | Path, precision: str = "fp32", ep: str = "wasm", threads: int | None = None):
        if ep not in PAGE_PROVIDERS:
            raise InputError(f"ep must be one of {', '.join(PAGE_PROVIDERS)}, not {ep!r}")
        self._stack = ExitStack()
        try:
            server = make_server(model_dir, precision=precision, port=0)
            server.start()
            self._stack.callback(server.server_close)
            self._stack.callback(server.shutdown)
            browser = self._stack.enter_context(chromium(software_webgpu=ep != "wasm"))
            self.page = browser.new_page()
            self.errors: list[str] = []
            self.page.on("pageerror", lambda e: self.errors.append(str(e)))
            query = f"?ep={ep}" + (f"&threads={threads}" if threads else "")
            self.page.goto(server.url + query)
            self.page.evaluate("sam2app.ready")
            config = self.page.evaluate("fetch('/config.json').then(r => r.json())")
        except BaseException:
            self._stack.close()
            raise
        self.files = {role: path.rsplit("/", 1)[1] for role, path in config["graphs"].items()}
        self.backend = self.page.evaluate("sam2app.backend()") | {"browser": f"chromium {browser.version}"}
        self._serial = 0

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> BrowserPredictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def embed(self, image) -> PageEmbedding:
        """Open ``image`` (HxWx3 uint8 RGB or PIL) in the page; its encoder runs there."""
        from PIL import Image

        rgb = as_rgb(image)
        png = io.BytesIO()
        Image.fromarray(rgb).save(png, format="PNG")
        self.page.set_input_files(
            "#file", files=[{"name": "image.png", "mimeType": "image/png", "buffer": png.getvalue()}]
        )
        self.page.evaluate("sam2app.idle()")
        error = self.page.evaluate("sam2app.error()")
        if error:
            raise RuntimeError(f"the page failed: {error}")
        size = C.IMAGE_SIZE
        self._serial += 1
        x = _floats(self.page.evaluate("sam2app.input()"), (1, 3, size, size))
        return PageEmbedding(rgb.shape[:2], x, self._serial)

    def encode_tensor(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The page's encoder graph on a preprocessed [1, 3, 1024, 1024] tensor -> its outputs."""
        out = self.page.evaluate("b => sam2app.encodeTensor(b)", _b64(x))
        return {s.name: _floats(out[s.name], (1, *s.shape[1:])) for s in C.ENCODER_OUTPUTS}

    def decode(
        self,
        embedding: PageEmbedding,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ):
        """As ``SAM2OnnxPredictor.decode``, run by the page: ``(masks, scores, low_res_logits)``,
        [C, H, W], [C], [C, 256, 256] for one prompt, with a leading L for several."""
        if embedding.serial != self._serial:
            raise NotReadyError("the page holds another image now: embed this one again")
        if not normalize_coords:
            raise InputError("the page takes pixel coordinates (normalize_coords=True)")
        if mask_input is not None and np.ndim(mask_input) == 4 and len(mask_input) > 1:
            raise InputError("the page takes one mask_input for all prompts ([1, 256, 256])")
        h, w = embedding.orig_hw
        # the same validation (and errors) as the Python runtime; the page builds its own feeds
        prompts = prepare_prompts(point_coords, point_labels, box, mask_input, (h, w))
        args = {
            "point_coords": None if point_coords is None else np.asarray(point_coords, float).tolist(),
            "point_labels": None if point_labels is None else np.asarray(point_labels, float).tolist(),
            "box": None if box is None else np.asarray(box, float).tolist(),
            "mask_input": None if mask_input is None else _b64(prompts.mask_input[0]),
            "multimask_output": multimask_output,
        }
        out = self.page.evaluate("a => sam2app.predict(a)", args)
        n, count = out["prompts"], out["count"]
        low_res = _floats(out["lowRes"], (n, count, C.LOW_RES_SIZE, C.LOW_RES_SIZE))
        scores = np.float32(out["scores"]).reshape(n, count)
        masks = np.empty((n * count, h, w), np.float32)
        for i in range(n * count):
            data = base64.b64decode(self.page.evaluate(f"sam2app.predictedMask({i}, {str(return_logits).lower()})"))
            masks[i] = np.frombuffer(data, np.float32 if return_logits else np.uint8).reshape(h, w)
        masks = masks.reshape(n, count, h, w)
        low_res = np.clip(low_res, -C.LOW_RES_CLAMP, C.LOW_RES_CLAMP)
        if n == 1:  # the official predictor squeezes a batch of one
            masks, scores, low_res = masks[0], scores[0], low_res[0]
        return masks, scores, low_res
