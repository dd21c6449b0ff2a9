"""Static INT8 calibration: photos, graph feeds, and MinMax activation ranges.

The ranges are collected here rather than by onnxruntime's MinMaxCalibrater: that one appends
every ReduceMin/ReduceMax at the end of the graph, so onnxruntime keeps every calibrated
activation alive until the end of a run (about 10 GB for tiny's encoder; far beyond this
machine's memory for large). Placing each reduction right after the node that produces its
tensor lets activations be freed as usual. The result is written in onnxruntime's calibration
cache format and handed to ``quantize_static``, which then skips its own calibration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..checks.equivalence import Feeds, cpu_session
from ..checks.sam1_inputs import sam1_decoder_feeds
from ..checks.sample_inputs import SAMPLE_PHOTO, decoder_feed
from ..core import contract as C
from ..core.errors import InputError
from ..runtime import sam1_transforms
from ..runtime.inputs import read_image
from ..runtime.transforms import preprocess

CALIBRATION_DIR = Path(__file__).resolve().parent.parent / "data" / "calibration"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def calibration_images(directory: Path | None = None) -> dict[str, np.ndarray]:
    """``{file name: HxWx3 uint8}``: every image in ``directory``, or the bundled set (the
    photos under data/calibration plus the sample photo), sorted by name."""
    if directory is None:
        paths = sorted(CALIBRATION_DIR.glob("*.jpg")) + [SAMPLE_PHOTO]
    else:
        directory = Path(directory)
        if not directory.is_dir():
            raise InputError(f"--calibration-images {directory}: not a directory")
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise InputError(f"--calibration-images {directory}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return {p.name: read_image(p) for p in paths}


def encoder_feed(image: np.ndarray, profile: C.Profile = C.SAMEXPORTER) -> Feeds:
    """One HxWx3 uint8 photo as ``profile``'s encoder input [1, 3, 1024, 1024], preprocessed
    like the runtime does (SAM 2: resized to the square; SAM 1: longest side, padded)."""
    if profile.family == "sam1":
        return {profile.encoder_inputs[0].name: sam1_transforms.preprocess(image)[0]}
    return {profile.encoder_inputs[0].name: preprocess(image)}


def encoder_feeds(images: dict[str, np.ndarray], profile: C.Profile = C.SAMEXPORTER) -> list[Feeds]:
    """One encoder feed per photo (:func:`encoder_feed`)."""
    return [encoder_feed(image, profile) for image in images.values()]


def decoder_feeds(
    encoder: Path, images: dict[str, np.ndarray], profile: C.Profile = C.SAMEXPORTER, known: dict | None = None
) -> list[Feeds]:
    """Per photo, the FP32 encoder's features with the sample prompts (a click; then boxes,
    clicks, padding and mask inputs: sample_inputs.decoder_feed, or sam1_inputs' for SAM 1).
    ``known``: {photo name: features} already computed by the same encoder (mask_check's),
    which is most of the time for the large encoders."""
    session, known = None, known or {}
    feeds = []
    for name, image in images.items():
        features = known.get(name)
        if features is None:
            session = session or cpu_session(encoder)
            names = [o.name for o in session.get_outputs()]
            features = dict(zip(names, session.run(None, encoder_feed(image, profile))))
        masks = np.zeros((1, 4, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32)  # a refinement input
        if profile.family == "sam1":
            embeddings, hw = features["image_embeddings"], image.shape[:2]
            feeds += [sam1_decoder_feeds(embeddings, hw), sam1_decoder_feeds(embeddings, hw, masks)]
        else:
            feeds += [decoder_feed(features), decoder_feed(features, masks[:, :3])]
    return feeds


def minmax_ranges(model_path: Path, tensors: list[str], feeds: list[Feeds]) -> dict[str, tuple[float, float]]:
    """Smallest and largest value of each named tensor over all ``feeds`` (float32 tensors)."""
    model = onnx.load(str(model_path))
    graph = model.graph
    wanted = set(tensors)
    inputs = {i.name for i in graph.input}
    nodes, outputs = [], []

    def reductions(name: str) -> list:
        made = []
        for op in ("ReduceMin", "ReduceMax"):
            out = f"{name}__{op}"
            made.append(onnx.helper.make_node(op, [name], [out], keepdims=0, name=out))
            outputs.append(onnx.helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, []))
        return made

    for name in sorted(wanted & inputs):
        nodes += reductions(name)
    for node in graph.node:
        nodes.append(node)
        for out in node.output:
            if out in wanted:
                nodes += reductions(out)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.output.extend(outputs)
    from .int8 import remove_graph, save_like

    augmented = model_path.with_name(model_path.name + ".calibrate")
    save_like(model, model_path, augmented)
    del model
    try:
        session = cpu_session(augmented)
        names = [o.name for o in outputs]
        low = {t: np.inf for t in wanted}
        high = {t: -np.inf for t in wanted}
        for feed in feeds:
            values = dict(zip(names, session.run(names, feed)))
            for t in wanted:
                low[t] = min(low[t], float(values[f"{t}__ReduceMin"]))
                high[t] = max(high[t], float(values[f"{t}__ReduceMax"]))
    finally:
        remove_graph(augmented)
    return {t: (low[t], high[t]) for t in tensors}


def write_cache(ranges: dict[str, tuple[float, float]], path: Path) -> None:
    """Write ``ranges`` as onnxruntime's MinMax calibration cache (``calibration_cache_path``)."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorsData, save_tensors_data

    data = {t: (np.array(lo, np.float32), np.array(hi, np.float32)) for t, (lo, hi) in ranges.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), path)
