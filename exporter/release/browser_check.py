"""Which release files a browser can run: every graph file, ``.onnx`` and ``.ort``, loaded by
onnxruntime-web in headless Chromium on each execution provider asked for, and run on the
sample photo and prompts against the Python onnxruntime on the same file.

- An encoder file passes when the masks decoded (in Python, by the same precision's
  ``decoder.onnx``) from its browser outputs equal those decoded from its Python outputs:
  mask IoU >= WEB_MASK_IOU_MIN on the five sample prompts' 15 masks, as for the ``.ort`` copies,
  over the pixels the Python logits decide by the precision's parity ``iou_band``.
- A decoder file passes when its browser masks equal its Python masks on the same features
  (the Python encoder's), by the same measure, for the same prompts.

A file for the web is a single file (no external data: a browser fetches one URL per session)
that passes on wasm. A file that fails on wasm refuses the release: the CPU build of
onnxruntime-web runs every operator of onnxruntime's CPU provider, so a failure there is a
defect. Other providers (WebGPU) are recorded, pass or fail, with onnxruntime-web's error: what
they support depends on the adapter (``adapter`` says which one ran).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..checks.equivalence import decided_iou, rel_l2, run_graph
from ..checks.sample_inputs import SAMPLE_PHOTO, decoder_feed
from ..core import contract as C
from ..core.errors import IntegrityError
from ..core.manifest import GRAPHS
from ..core.variants import resolve
from ..runtime.inputs import read_image
from ..runtime.sessions import graph_file
from ..runtime.transforms import preprocess

WEB_MASK_IOU_MIN = 0.9999
BROWSER_EPS = ("wasm",)  # what `release` checks unless told otherwise


def sample_image() -> np.ndarray:
    """The sample photo as the runtimes preprocess it: [1, 3, 1024, 1024] float32."""
    return preprocess(read_image(SAMPLE_PHOTO))


def external_data(path: Path) -> bool:
    """Whether an ONNX file keeps tensors in other files (a browser session loads one file)."""
    import onnx

    if path.suffix != ".onnx":
        return False  # ORT format has no external data
    model = onnx.load(str(path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def _logits(outputs: list[dict]) -> list[np.ndarray]:
    """Every mask's logits of a decoder's runs, [256, 256] each."""
    return [m for out in outputs for m in out["masks"].reshape(-1, *out["masks"].shape[-2:])]


def _decode_both(decoder: Path, features: dict) -> list[dict]:
    first = run_graph(decoder, [decoder_feed(features)])[0]
    return [first, run_graph(decoder, [decoder_feed(features, first["masks"])])[0]]


def _compare_masks(band: float, want: list[dict], got: list[dict]) -> dict:
    """Masks over the pixels the Python side decides by ``band`` (the precision's parity
    ``iou_band``: random-weight logits hold plateaus within rounding of the threshold)."""
    pairs = list(zip(_logits(want), _logits(got)))
    ious = [decided_iou(a, b, band, C.MASK_THRESHOLD) for a, b in pairs]
    scores = max(float(np.abs(w["iou_predictions"] - g["iou_predictions"]).max()) for w, g in zip(want, got))
    return {
        "masks": len(ious),
        "mask_iou_min": round(min(ious), 6),
        "iou_band": band,
        "logits_max_abs": max(float(np.abs(a - b).max()) for a, b in pairs),
        "iou_predictions_max_abs": scores,
    }


def check_in_browser(folder: Path, manifest: dict, eps=BROWSER_EPS, progress=None, roles: dict | None = None) -> dict:
    """Check every graph file of a release folder in Chromium; returns the release's
    ``browser`` record. IntegrityError when a single file fails on wasm.

    ``roles``: ``{ep: ("decoder",)}`` checks only those graphs on that provider (the docs'
    table: Chromium's software WebGPU adapter takes longer than 15 minutes over an encoder)."""
    from ..web.graph_check import BrowserGraphs

    say = progress or (lambda _msg: None)
    folder = Path(folder)
    image = {"image": sample_image()}
    gates = resolve(manifest["variant"]["name"]).parity
    pairs = []  # (encoder file, decoder file, the precision's decoder.onnx, iou band): .onnx and .ort of each
    for precision in manifest.get("precisions") or {"fp32": {}}:
        names = [graph_file(role, precision, manifest) for role in GRAPHS]
        band = gates[precision]["iou_band"]
        pairs += [(*(str(Path(n).with_suffix(fmt)) for n in names), names[1], band) for fmt in (".onnx", ".ort")]
    files = list(dict.fromkeys(name for pair in pairs for name in pair[:2]))  # INT8 may share the FP32 decoder
    single = {name: not external_data(folder / name) for name in files}
    checked = {name: {} for name in files}
    record = {"eps": list(eps), "mask_iou_min": WEB_MASK_IOU_MIN, "files": checked}
    expected = {}  # the Python onnxruntime's side of each pair: encoder outputs, masks, decoder feeds and outputs
    for encoder, decoder, reference, _band in pairs:
        python = run_graph(folder / encoder, [image])[0]
        want = _decode_both(folder / reference, python)
        feeds = [decoder_feed(python), decoder_feed(python, want[0]["masks"])]
        expected[encoder, decoder] = python, want, feeds, run_graph(folder / decoder, feeds)
    for ep in eps:
        with BrowserGraphs(folder, [name for name in files if single[name]], ep) as browser:
            record |= {"browser": browser.browser, "onnxruntime_web": browser.ort_web}
            for encoder, decoder, reference, band in pairs:
                python, want, feeds, python_out = expected[encoder, decoder]
                wanted = (roles or {}).get(ep, GRAPHS)
                if "encoder" in wanted and single[encoder] and ep not in checked[encoder]:
                    say(f"{ep}: {encoder}")
                    run = browser.run(encoder, [image])
                    checked[encoder][ep] = _verdict(run, _encoder_result, band, python, want, folder / reference)
                if "decoder" in wanted and single[decoder] and ep not in checked[decoder]:
                    say(f"{ep}: {decoder}")
                    run = browser.run(decoder, feeds)
                    checked[decoder][ep] = _verdict(run, _compare_masks, band, python_out)
                    record["adapter"] = run.adapter or record.get("adapter")
    for name, results in checked.items():
        results["single_file"] = single[name]
    record["for_web"] = [n for n in files if single[n] and checked[n].get("wasm", {}).get("verdict") == "pass"]
    broken = [
        f"{n} ({checked[n]['wasm']['reason']})" for n in files if checked[n].get("wasm", {}).get("verdict") == "fail"
    ]
    if broken:
        raise IntegrityError(f"onnxruntime-web on wasm does not run {', '.join(broken)} as onnxruntime does")
    return record


def _encoder_result(band: float, python: dict, want: list[dict], decoder: Path, outputs: list[dict]) -> dict:
    """The browser's encoder outputs, decoded by the Python decoder, against the Python ones'."""
    web = outputs[0]
    result = _compare_masks(band, want, _decode_both(decoder, web))
    return result | {"features_rel_l2_max": max(rel_l2(web[k], python[k]) for k in python)}


def _verdict(run, compare, *expected) -> dict:
    """A GraphRun -> {verdict, reason, ...numbers of ``compare(*expected, run.outputs)``}."""
    if not run.ok:
        return {"verdict": "fail", "stage": run.stage, "reason": f"{run.stage} failed: {run.error}"}
    result = compare(*expected, run.outputs)
    if result["mask_iou_min"] < WEB_MASK_IOU_MIN:
        reason = f"mask IoU {result['mask_iou_min']:.6f} < {WEB_MASK_IOU_MIN}"
        return result | {"verdict": "fail", "stage": "masks", "reason": reason}
    return result | {"verdict": "pass"}
