"""Automatic mask generation parity: SAM2OnnxAutomaticMaskGenerator vs the official
SAM2AutomaticMaskGenerator (SAM 1: SAM1OnnxAutomaticMaskGenerator vs SamAutomaticMaskGenerator),
same weights, same parameters, same photos.

Random weights give mask logits within about 0.2 of zero: every mask covers most of the
image, so every box is the whole image, nearly no mask is "stable" at the default offset of
1.0, and box NMS at 0.7 collapses everything to one mask. The settings below lower the
thresholds until dozens of masks survive (predicted IoU > 0.52 and stability >= 0.6 at
offset 0.05 keep about a third; box NMS at 1.0 keeps masks with equal boxes), so that every
filter still decides and every record field can be compared. NMS itself is checked against
torchvision in the unit tests. In the crop setting every sub-crop mask of random weights
reaches its crop's inner edge, so both generators drop them (the crop-edge filter) and the
surviving masks come from the whole-image crop.

How many masks survive depends on the weights (with seed 11, the settings above keep one mask
on chelsea and none on coffee), and a comparison of one mask proves little. So each case walks
``LADDER``: the official generator runs at each step, every step lowering the filters further,
until it keeps at least ``automask_min_masks`` (a gate in ``configs/``); both generators are
then compared at that step, and the step and every try are recorded in the case. A reference
that raises (the official generator crashes in ``box_area`` when a crop setting keeps no mask)
counts as zero masks at that step; at the last step it fails the case with its error.

Masks are matched one to one by IoU (greedy, best pair first); the gates (``automask_*`` in
``configs/<variant>.yaml`` ``parity.fp32``) ask for the same count, at least
``automask_min_masks`` matched pairs, matched IoU, equal boxes and areas within rounding.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..core.errors import one_line
from ..runtime.automask import SAM2OnnxAutomaticMaskGenerator
from ..runtime.rle import rle_to_mask
from ..runtime.sam1_automask import SAM1OnnxAutomaticMaskGenerator
from ..runtime.sam1_predictor import SAM1OnnxPredictor
from .sam1_reference import Sam1Reference

_LOWERED = dict(pred_iou_thresh=0.52, stability_score_thresh=0.6, stability_score_offset=0.05, box_nms_thresh=1.0)
# name -> generator parameters (shared by both generators)
SETTINGS = {
    "grid": dict(points_per_side=8, **_LOWERED),
    "crops": dict(points_per_side=4, crop_n_layers=1, crop_nms_thresh=1.0, **_LOWERED),
}
# Lowered further, step by step, until the official generator keeps enough masks; the last step
# turns both filters off (0 disables them in both generators), leaving NMS and crop edges.
LADDER = (
    {},
    dict(pred_iou_thresh=0.3, stability_score_thresh=0.3),
    dict(pred_iou_thresh=0.0, stability_score_thresh=0.0),
)
# setting -> the sample photos it runs on (crops cost five encoder runs per photo)
PHOTOS = {"grid": ("chelsea", "coffee"), "crops": ("chelsea",)}
GATE_KEYS = (
    "automask_iou_min",
    "automask_count_diff",
    "automask_box_mismatches",
    "automask_area_rel_max",
    "automask_score_abs",
    "automask_min_masks",
)


def masks_of(records: list[dict]) -> list[np.ndarray]:
    """[H, W] bool per record (binary or uncompressed RLE segmentations)."""
    return [
        r["segmentation"] if isinstance(r["segmentation"], np.ndarray) else rle_to_mask(r["segmentation"])
        for r in records
    ]


def match(ours: list[dict], reference: list[dict]) -> list[tuple[int, int, float]]:
    """One-to-one pairs (our index, reference index, IoU), best IoU first, greedy."""
    if not ours or not reference:
        return []
    a = np.stack([m.ravel() for m in masks_of(ours)]).astype(np.float32)
    b = np.stack([m.ravel() for m in masks_of(reference)]).astype(np.float32)
    inter = a @ b.T  # exact: counts < 2^24
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = divmod(int(flat), iou.shape[1])
        if i not in used_a and j not in used_b:
            pairs.append((i, j, float(iou[i, j])))
            used_a.add(i)
            used_b.add(j)
    return pairs


def compare(ours: list[dict], reference: list[dict]) -> dict:
    """Metrics of one image: counts, matched IoU, box and area agreement, score differences."""
    pairs = match(ours, reference)
    box_mismatch = sum(ours[i]["bbox"] != reference[j]["bbox"] for i, j, _ in pairs)
    area_rel = max(
        (abs(ours[i]["area"] - reference[j]["area"]) / max(reference[j]["area"], 1) for i, j, _ in pairs), default=0.0
    )
    score_abs = max(
        (max(abs(ours[i][k] - reference[j][k]) for k in ("predicted_iou", "stability_score")) for i, j, _ in pairs),
        default=0.0,
    )
    same_prompt = sum(
        ours[i]["point_coords"] == reference[j]["point_coords"] and ours[i]["crop_box"] == reference[j]["crop_box"]
        for i, j, _ in pairs
    )
    return {
        "masks_ours": len(ours),
        "masks_reference": len(reference),
        "automask_masks_matched": len(pairs),
        "automask_count_diff": abs(len(ours) - len(reference)),
        "automask_iou_min": min((p[2] for p in pairs), default=1.0 if not ours and not reference else 0.0),
        "automask_box_mismatches": box_mismatch,
        "automask_area_rel_max": area_rel,
        "automask_score_abs": score_abs,
        "same_prompt_and_crop": same_prompt,
        "crops_with_masks": len({tuple(r["crop_box"]) for r in ours}),
    }


def reference_generator(ref_predictor, params: dict):
    """The official generator on the reference predictor's model."""
    if isinstance(ref_predictor, Sam1Reference):
        from segment_anything import SamAutomaticMaskGenerator

        return SamAutomaticMaskGenerator(ref_predictor.predictor.model, **params)
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    return SAM2AutomaticMaskGenerator(ref_predictor.model, **params)


def reference_records(ref_predictor, image: np.ndarray, params: dict, min_masks: int) -> tuple[list, dict, list]:
    """The official generator down ``LADDER`` until it keeps ``min_masks``: (records, the
    parameters used, every try as {step, lowered, masks, error})."""
    import torch

    tries, records, used = [], [], dict(params)
    for step, lowered in enumerate(LADDER):
        used = params | lowered
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                records, error = reference_generator(ref_predictor, used).generate(image.copy()), None
        except Exception as exc:  # the official generator's own crash on an empty result, among others
            records, error = [], one_line(exc)
        tries.append({"step": step, "lowered": lowered, "masks": len(records), "error": error})
        if len(records) >= min_masks:
            break
    return records, used, tries


def run_case(ref_predictor, ours, image: np.ndarray, params: dict, min_masks: int) -> tuple[dict, dict, tuple, list]:
    """Both generators on ``image`` at the first ``LADDER`` step where the official one keeps
    ``min_masks``: (metrics, seconds, (reference records, our records), failures that are not
    gates: the reference's error at the last step, or ours)."""
    t0 = time.perf_counter()
    reference, used, tries = reference_records(ref_predictor, image, params, min_masks)
    t1 = time.perf_counter()
    problems = (
        [f"the official generator raised {tries[-1]['error']} at the lowest settings"] if tries[-1]["error"] else []
    )
    try:
        ours_class = (
            SAM1OnnxAutomaticMaskGenerator if isinstance(ours, SAM1OnnxPredictor) else SAM2OnnxAutomaticMaskGenerator
        )
        mine = ours_class(ours, **used).generate(image)
    except Exception as exc:
        mine = []
        problems.append(f"our generator raised {one_line(exc)}")
    t2 = time.perf_counter()
    metrics = compare(mine, reference) | {
        "automask_step": tries[-1]["step"],
        "automask_params": used,
        "automask_tries": tries,
    }
    return metrics, {"reference": t1 - t0, "ours": t2 - t1}, (reference, mine), problems
