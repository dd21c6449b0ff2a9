"""The browser runtime in real headless Chromium: the page ``sam2-onnx serve`` hosts, against the
Python runtime on the same files and photos.

onnxruntime-web's wasm backend runs tiny's FP32 graphs (random weights, seed 0, standing in for
official checkpoints, which cannot be downloaded here). Gates: the page's input tensor equals
``runtime.transforms.preprocess`` bit for bit, its prompt feeds equal ``prepare_prompts``', its
low-res logits are within 1e-4 of the Python runtime's, scores within 1e-4, and every
original-size mask has IoU >= 0.9999 with the Python one, for every prompt kind of the parity
plan on two non-square photos (``refine`` fed the best mask of a click, as the parity engine
feeds it). The page is driven with a real mouse too: clicks, a second click
that feeds the previous mask back, a dragged box, undo, clear, the drawn overlay and the
downloaded PNG.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion
from skimage.morphology import disk

from exporter.core import contract as C
from exporter.core.errors import InputError, ManifestError, SetupError
from exporter.parity.cases import KINDS, sample_image
from exporter.parity.metrics import iou
from exporter.runtime import SAM2OnnxPredictor
from exporter.runtime.inputs import prepare_prompts
from exporter.runtime.transforms import preprocess
from exporter.web import server as web_server
from exporter.web.browser import chromium
from exporter.web.server import make_server

from .fixtures import run_cli

PHOTOS = ("chelsea", "coffee")  # 300 x 451 and 400 x 600: non-square, so x and y scale differently
LOGITS_MAX_ABS = 1e-4
SCORE_ABS = 1e-4
MASK_IOU_MIN = 0.9999


def floats(text: str, shape=None) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(text), np.float32)
    return a.reshape(shape) if shape else a


def bits(text: str, h: int, w: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint8).reshape(h, w)


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.float32).tobytes()).decode()


@pytest.fixture(scope="module")
def folder(exported):
    return exported("tiny")


@pytest.fixture(scope="module")
def served(folder):
    server = make_server(folder, port=0)
    server.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def python(folder):
    return SAM2OnnxPredictor(folder)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Photo name -> (PNG path, HxWx3 uint8): PNG, so the browser decodes the bytes PIL reads."""
    root = tmp_path_factory.mktemp("photos")
    out = {}
    for name in PHOTOS:
        image = sample_image(name)
        Image.fromarray(image).save(root / f"{name}.png")
        out[name] = (root / f"{name}.png", image)
    return out


@pytest.fixture(scope="module")
def page(served):
    """The page on wasm, model loaded; fails the test module on any uncaught page error."""
    errors = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(served.url + "?ep=wasm")
        page.evaluate("sam2app.ready")
        yield page
    assert not errors, f"errors in the page: {errors}"


def open_photo(page, path) -> dict:
    """Open ``path`` in the page with its file input, unless it is the open one (an encoder run
    on wasm takes tens of seconds)."""
    if getattr(page, "open_photo", None) != path:
        page.set_input_files("#file", str(path))
        page.evaluate("sam2app.idle()")
        assert page.evaluate("sam2app.error()") is None
        page.open_photo = path
    return page.evaluate("sam2app.embedding()")


def jsonable(kwargs: dict) -> dict:
    """predict kwargs -> what sam2app.predict takes (lists; mask_input as base64 float32)."""
    out = {k: np.asarray(v).tolist() for k, v in kwargs.items() if k in ("point_coords", "point_labels", "box")}
    if kwargs.get("mask_input") is not None:
        out["mask_input"] = b64(kwargs["mask_input"])
    return out | {"multimask_output": kwargs.get("multimask_output", True)}


def test_the_page_loads_with_threads_and_says_which_backend(page):
    backend = page.evaluate("sam2app.backend()")
    assert backend["isolated"] is True  # COOP/COEP: SharedArrayBuffer, so wasm threads
    assert backend["encoder"] == "wasm" and backend["decoder"] == "wasm"
    assert backend["threads"] == page.evaluate("navigator.hardwareConcurrency")
    assert re.fullmatch(r"\d+\.\d+\.\d+", backend["ort"])
    assert "wasm" in page.inner_text("#status")


@pytest.mark.parametrize("photo", PHOTOS)
def test_every_prompt_kind_matches_the_python_runtime(page, python, photos, photo):
    path, image = photos[photo]
    h, w = image.shape[:2]
    assert open_photo(page, path)["width"] == w
    # the encoder's input: bit for bit
    web_x = floats(page.evaluate("sam2app.input()"), (1, 3, C.IMAGE_SIZE, C.IMAGE_SIZE))
    assert np.array_equal(web_x, preprocess(image)), f"max diff {np.abs(web_x - preprocess(image)).max()}"
    embedding = python.embed(image)
    failures, worst = [], {"logits": 0.0, "score": 0.0, "iou": 1.0}
    for kind, make in KINDS.items():
        kwargs = make(h, w)
        if kind == "refine":  # as the parity engine: the best low-res logits of a click, fed to both
            _, scores, low_res = python.decode(embedding, **KINDS["point"](h, w))
            kwargs["mask_input"] = low_res[np.argmax(scores)][None]
        web = page.evaluate("a => sam2app.predict(a)", jsonable(kwargs))
        lo, scores = python.decode_logits(embedding, **kwargs)
        masks = python.decode(embedding, **kwargs)[0].reshape(-1, h, w)
        web_lo = floats(web["lowRes"], lo.shape)
        web_masks = [bits(page.evaluate(f"sam2app.predictedMask({i}, false)"), h, w) for i in range(len(masks))]
        feeds = prepare_prompts(kwargs.get("point_coords"), kwargs.get("point_labels"), kwargs.get("box"), None, (h, w))
        if not np.array_equal(np.float32(web["coords"]), feeds.point_coords.ravel()):
            failures.append(f"{kind}: point_coords differ")
        if web["labels"] != feeds.point_labels.ravel().tolist():
            failures.append(f"{kind}: point_labels differ")
        d_logits = float(np.abs(web_lo - lo).max())
        d_score = float(np.abs(np.float32(web["scores"]).reshape(scores.shape) - scores).max())
        ious = [iou(a > 0, b > 0) for a, b in zip(web_masks, masks)]
        worst = {
            "logits": max(worst["logits"], d_logits),
            "score": max(worst["score"], d_score),
            "iou": min([worst["iou"], *ious]),
        }
        if d_logits > LOGITS_MAX_ABS or d_score > SCORE_ABS or min(ious) < MASK_IOU_MIN:
            failures.append(f"{kind}: logits {d_logits:.2e}, score {d_score:.2e}, IoU min {min(ious):.6f}")
        if not kwargs.get("multimask_output", True):
            assert web["count"] == 1
    assert not failures, f"{photo}: " + "; ".join(failures) + f" (worst {worst})"


def view_point(page, x: float, y: float) -> tuple[float, float]:
    """Image pixel -> page coordinates of the displayed canvas."""
    box = page.locator("#view").bounding_box()
    size = page.evaluate("[document.getElementById('view').width, document.getElementById('view').height]")
    return box["x"] + x * box["width"] / size[0], box["y"] + y * box["height"] / size[1]


def test_mouse_clicks_refine_box_undo_and_clear(page, python, photos):
    path, image = photos["coffee"]
    h, w = image.shape[:2]
    open_photo(page, path)
    embedding = python.embed(image)
    page.evaluate("sam2app.clear()")
    page.mouse.click(*view_point(page, 0.5 * w, 0.45 * h))
    page.evaluate("sam2app.idle()")
    first = page.evaluate("sam2app.last()")
    ((x, y, label),) = first["clicks"]
    assert label == 1 and abs(x - 0.5 * w) < 1.5 and abs(y - 0.45 * h) < 1.5
    assert first["maskInput"] is None and first["count"] == 3
    lo, scores = python.decode_logits(embedding, [[x, y]], [1])
    assert np.abs(floats(first["lowRes"], lo.shape) - lo).max() <= LOGITS_MAX_ABS
    assert first["chosen"] == int(np.argmax(scores[0]))
    # a background click (right button) refines from the chosen mask's clamped low-res logits
    # (the page's own: it feeds back what it computed)
    page.mouse.click(*view_point(page, 0.1 * w, 0.1 * h), button="right")
    page.evaluate("sam2app.idle()")
    second = page.evaluate("sam2app.last()")
    assert [c[2] for c in second["clicks"]] == [1, 0]
    fed = floats(second["maskInput"], (1, C.LOW_RES_SIZE, C.LOW_RES_SIZE))
    expected = np.clip(floats(first["lowRes"], lo.shape)[0, first["chosen"]], -C.LOW_RES_CLAMP, C.LOW_RES_CLAMP)
    assert np.array_equal(fed[0], expected)
    clicks = np.array([c[:2] for c in second["clicks"]])
    lo2, _ = python.decode_logits(embedding, clicks, [1, 0], mask_input=fed)
    assert np.abs(floats(second["lowRes"], lo2.shape) - lo2).max() <= LOGITS_MAX_ABS
    # a drag is a box, kept with the clicks
    start, end = view_point(page, 0.2 * w, 0.15 * h), view_point(page, 0.8 * w, 0.85 * h)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=5)
    page.mouse.up()
    page.evaluate("sam2app.idle()")
    third = page.evaluate("sam2app.last()")
    assert third["box"] is not None and len(third["clicks"]) == 2
    assert np.allclose(third["box"], [0.2 * w, 0.15 * h, 0.8 * w, 0.85 * h], atol=1.5)
    assert page.evaluate("sam2app.steps()") == 3
    page.click("#undo")
    page.evaluate("sam2app.idle()")
    assert page.evaluate("sam2app.steps()") == 2 and page.evaluate("sam2app.last()")["scores"] == second["scores"]
    page.click("#clear")
    page.evaluate("sam2app.idle()")
    assert page.evaluate("sam2app.steps()") == 0 and page.evaluate("sam2app.last()") is None
    # a second click made while the first one decodes builds on it
    page.evaluate(
        f"Promise.all([sam2app.addPoint({0.3 * w}, {0.3 * h}, 1), sam2app.addPoint({0.6 * w}, {0.6 * h}, 0)])"
    )
    assert [c[2] for c in page.evaluate("sam2app.last()")["clicks"]] == [1, 0]
    assert page.evaluate("sam2app.steps()") == 2


def test_the_overlay_is_drawn_where_the_mask_is_and_the_png_is_the_mask(page, photos, tmp_path):
    path, image = photos["coffee"]
    h, w = image.shape[:2]
    open_photo(page, path)
    page.evaluate("sam2app.clear()")
    plain = np.asarray(Image.open(_shot(page, tmp_path / "plain.png")).convert("RGB")).astype(int)
    # a mask that covers part of the photo: the first candidate of a few prompts between 5% and 95%
    for fx, fy in ((0.5, 0.45), (0.25, 0.3), (0.75, 0.7), (0.1, 0.9)):
        page.evaluate(f"sam2app.clear().then(() => sam2app.addPoint({fx * w}, {fy * h}, 1))")
        page.evaluate("sam2app.idle()")
        step = page.evaluate("sam2app.last()")
        choice = next((i for i in range(3) if 0.05 < _chosen_bits(page, i, h, w).mean() < 0.95), None)
        if choice is not None:
            break
    assert choice is not None, "no candidate mask covers between 5% and 95% of the photo"
    page.evaluate(f"sam2app.choose({choice})")
    page.evaluate("sam2app.idle()")
    step = page.evaluate("sam2app.last()")
    mask = bits(step["mask"], h, w).astype(bool)
    shown = np.asarray(Image.open(_shot(page, tmp_path / "mask.png")).convert("RGB")).astype(int)
    # the mask at the displayed size (nearest), away from its edges and from the click marker
    sh, sw = shown.shape[:2]
    rows, cols = (np.arange(sh) * h // sh), (np.arange(sw) * w // sw)
    small = mask[np.ix_(rows, cols)]
    ((cx, cy, _),) = step["clicks"]
    yy, xx = np.mgrid[:sh, :sw]
    marker = (xx - cx * sw / w) ** 2 + (yy - cy * sh / h) ** 2 < (0.05 * sw) ** 2
    inside, outside = binary_erosion(small, disk(3)) & ~marker, binary_erosion(~small, disk(3)) & ~marker
    diff = shown - plain
    assert inside.sum() > 100 and outside.sum() > 100
    assert np.abs(diff[outside]).max(axis=1).mean() < 2, "pixels outside the mask changed"
    blue = diff[inside]
    assert (blue[:, 2] - blue[:, 0]).mean() > 40, "the overlay is not drawn over the mask"
    # the downloaded PNG is the chosen mask at the original size
    with page.expect_download() as download:
        page.click("#download")
    png = np.asarray(Image.open(download.value.path()))
    assert png.shape[:2] == (h, w)
    assert np.array_equal(png.reshape(h, w, -1)[..., 0] > 127, mask)


def _chosen_bits(page, index: int, h: int, w: int) -> np.ndarray:
    page.evaluate(f"sam2app.choose({index})")
    return bits(page.evaluate("sam2app.last()")["mask"], h, w)


def _shot(page, path):
    page.locator("#view").screenshot(path=str(path))
    return path


# --- the server -------------------------------------------------------------------------------


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), b""


def test_the_server_isolates_the_page_and_serves_only_its_routes(served, folder):
    status, headers, body = _get(served.url)
    assert status == 200 and b"/static/app.js" in body
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    config = json.loads(_get(served.url + "config.json")[2])
    assert config["contract"]["image_size"] == C.IMAGE_SIZE and config["contract"]["pixel_std"] == list(C.PIXEL_STD)
    assert [s["name"] for s in config["io"]["decoder"]["inputs"]] == C.names(C.DECODER_INPUTS)
    assert config["graphs"] == {"encoder": "/model/encoder.onnx", "decoder": "/model/decoder.onnx"}
    status, headers, body = _get(served.url + "model/decoder.onnx")
    assert status == 200 and body == (folder / "decoder.onnx").read_bytes()
    assert _get(served.url + config["ort"]["module"].lstrip("/"))[1]["Content-Type"].startswith("text/javascript")
    wasm = [r for r in served.routes if r.endswith(".wasm")]
    assert wasm and _get(served.url + wasm[0].lstrip("/"))[1]["Content-Type"] == "application/wasm"
    for path in ("model/../manifest.json", "model/parity.json", "static/../server.py", "ort/package.json", "nothing"):
        assert _get(served.url + path)[0] == 404, path


def test_serve_refuses_what_it_cannot_serve(folder, tmp_path, monkeypatch):
    with pytest.raises(ManifestError, match="not a directory"):
        make_server(tmp_path / "missing", port=0)
    with pytest.raises(ManifestError, match="no int8 graphs .*fp32"):
        make_server(folder, precision="int8", port=0)
    with pytest.raises(InputError, match="precision must be one of"):
        make_server(folder, precision="int4", port=0)
    taken = make_server(folder, port=0)
    try:
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{taken.server_address[1]}"):
            make_server(folder, port=taken.server_address[1])
    finally:
        taken.server_close()
    monkeypatch.setattr(web_server, "ORT_PACKAGE", tmp_path / "node_modules" / "onnxruntime-web")
    with pytest.raises(SetupError, match="onnxruntime-web is not installed .*bootstrap"):
        make_server(folder, port=0)


@pytest.mark.slow
def test_the_serve_command_serves_until_interrupted(folder):
    """Started as a background job is (SIGINT ignored, as a shell without job control leaves
    it), Ctrl+C's signal still stops it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "serve", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert _get(url)[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out, err
    bad = run_cli("serve", str(folder), "--precision", "fp16")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no fp16 graphs" in bad.stderr


# --- parity in the browser --------------------------------------------------------------------


@pytest.mark.slow
def test_parity_runtime_web_holds_the_page_to_the_official_predictor(folder, tmp_path):
    """``sam2-onnx parity --runtime web`` on a copy of the export: the usual report, with the
    page as "ours", gated as the Python runtime is; the Python verdict in the manifest is left
    as it was."""
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    before = json.loads((copy / "manifest.json").read_text()).get("parity")
    proc = run_cli("parity", copy, "--runtime", "web", "--samples", ",".join(PHOTOS))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((copy / "parity.web.json").read_text())
    assert report["verdict"] == "pass" and not report["failures"]
    assert report["runtime"]["name"] == "web" and report["runtime"]["encoder"] == "wasm"
    assert report["runtime"]["browser"].startswith("chromium ")
    assert len(report["cases"]) == len(PHOTOS) * (1 + len(KINDS))  # an encoder case + every kind, no automask
    assert report["gates"]["mask_iou_min"] == 0.9999
    worst = report["summary"]
    assert worst["iou_min"] >= 0.9999 and worst["logits_max_abs"] <= report["gates"]["logits_max_abs"]
    encoder = [c["metrics"] for c in report["cases"] if c["kind"] == "encoder"]
    assert all(m["preprocess_max_abs"] <= report["gates"]["preprocess_max_abs"] for m in encoder)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["parity_web"]["fp32"]["verdict"] == "pass"
    assert manifest["parity_web"]["fp32"]["report"] == "parity.web.json"
    assert manifest.get("parity") == before
    assert "in the browser" in proc.stderr and (copy / "parity.web.html").is_file()
