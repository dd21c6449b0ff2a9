"""Write one prediction to files: a PNG per mask, an overlay PNG and a JSON summary.

Everything goes into a staging folder first and is renamed into place at the end, so an
existing output folder is replaced only with ``force`` and never left half-written.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.staging import staged
from .overlay import overlay
from .predictor import SAM2OnnxPredictor

RESULT_FILE, OVERLAY_FILE = "result.json", "overlay.png"


def predict_to_files(
    predictor: SAM2OnnxPredictor,
    image: np.ndarray,
    out: Path,
    *,
    points=None,
    labels=None,
    boxes=None,
    multimask_output: bool = True,
    force: bool = False,
    source: str = "",
) -> dict:
    """Embed ``image``, decode the prompt(s), write ``out/`` and return the JSON summary.

    ``points`` [N, 2] with ``labels`` [N] and ``boxes`` [B, 4] are pixel coordinates; several
    boxes without points are decoded as a batch, one mask set per box.
    """
    t0 = time.perf_counter()
    embedding = predictor.embed(image)
    t1 = time.perf_counter()
    box = None if boxes is None else (boxes[0] if len(boxes) == 1 else boxes)
    masks, scores, _ = predictor.decode(embedding, points, labels, box, multimask_output=multimask_output)
    t2 = time.perf_counter()
    masks, scores = masks.reshape(-1, *masks.shape[-3:]), scores.reshape(-1, scores.shape[-1])  # [P, C, H, W]
    best = scores.argmax(axis=1)

    out = Path(out)
    with staged(out, force) as staging:
        files = []
        for p, per_prompt in enumerate(masks):
            for c, mask in enumerate(per_prompt):
                name = f"mask_{p}_{c}.png" if len(masks) > 1 else f"mask_{c}.png"
                Image.fromarray((mask > 0.5).astype(np.uint8) * 255).save(staging / name)
                files.append(name)
        picture = overlay(image, [masks[p, best[p]] for p in range(len(masks))], points, labels, boxes)
        picture.save(staging / OVERLAY_FILE)
        summary = {
            "image": source,
            "height": int(image.shape[0]),
            "width": int(image.shape[1]),
            "model": predictor.manifest["variant"]["name"],
            "precision": predictor.sessions.precision,
            "weights": predictor.manifest["weights"]["source"],
            "prompts": {
                "points": None if points is None else np.asarray(points).tolist(),
                "labels": None if labels is None else np.asarray(labels).tolist(),
                "boxes": None if boxes is None else np.asarray(boxes).tolist(),
            },
            "multimask_output": multimask_output,
            "scores": scores.tolist(),
            "best": best.tolist(),
            "mask_area": [[int((m > 0.5).sum()) for m in per_prompt] for per_prompt in masks],
            "timings_ms": {"encoder": round((t1 - t0) * 1e3, 1), "decoder": round((t2 - t1) * 1e3, 1)},
            "files": files + [OVERLAY_FILE, RESULT_FILE],
        }
        (staging / RESULT_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def automask_to_files(
    generator,
    image: np.ndarray,
    out: Path,
    *,
    overlay_path: Path | None = None,
    force: bool = False,
    source: str = "",
    progress=None,
) -> dict:
    """Run ``generator`` (a SAM2OnnxAutomaticMaskGenerator with an RLE ``output_mode``) on
    ``image``; write the records as JSON to ``out`` and, if asked, the overlay PNG.

    Both files are rendered in memory first and each is renamed into place, so a failure
    leaves neither half-written; existing files are replaced only with ``force``.
    """
    from ..core.errors import InputError, refuse_overwrite
    from ..core.staging import write_text_atomic
    from .overlay import automask_overlay
    from .rle import rle_to_mask

    params = generator.params
    if params.output_mode == "binary_mask":
        raise InputError("output_mode binary_mask cannot be written to JSON; use coco_rle or uncompressed_rle")
    for path in (out, overlay_path):
        if path is not None:
            refuse_overwrite(path, force)
    t0 = time.perf_counter()
    records = generator.generate(image, progress=progress)
    seconds = time.perf_counter() - t0
    summary = {
        "image": source,
        "height": int(image.shape[0]),
        "width": int(image.shape[1]),
        "model": generator.predictor.manifest["variant"]["name"],
        "precision": generator.predictor.sessions.precision,
        "weights": generator.predictor.manifest["weights"]["source"],
        "params": params.as_dict(),
        "count": len(records),
        "timings_s": {"total": round(seconds, 2), **{k: round(v, 2) for k, v in generator.seconds.items()}},
        "masks": records,
    }
    png = None
    if overlay_path is not None:
        masks = [rle_to_mask(r["segmentation"]) for r in records]
        picture = automask_overlay(image, masks, [r["point_coords"][0] for r in records])
        buf = io.BytesIO()
        picture.save(buf, format="PNG")
        png = buf.getvalue()
    text = json.dumps(summary, indent=1) + "\n"
    if png is not None:
        write_text_atomic(overlay_path, png)
    write_text_atomic(out, text)
    return summary
