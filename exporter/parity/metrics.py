"""Per-case parity metrics (numpy) and the gates they are held to.

Every metric is "lower is better" except IoU; ``check`` turns a metric dict into failures
that name the metric, its value, the threshold and the tolerance that would have passed.
NaN or inf never passes.
"""

from __future__ import annotations

import math

import numpy as np

from ..checks.equivalence import decided_iou, iou, rel_l2

# metric name -> (gate key in configs/<variant>.yaml parity.<precision>, direction)
GATES = {
    "preprocess_max_abs": ("preprocess_max_abs", "max"),
    "encoder_rel_l2": ("encoder_rel_l2", "max"),
    "logits_max_abs": ("logits_max_abs", "max"),
    "score_abs": ("score_abs", "max"),
    "mask_iou_min": ("mask_iou_min", "min"),
    "flips_outside_band": ("max_flips_outside_band", "max"),
    # automatic mask generator vs the official one (parity/automask.py)
    "automask_count_diff": ("automask_count_diff", "max"),
    "automask_iou_min": ("automask_iou_min", "min"),
    "automask_box_mismatches": ("automask_box_mismatches", "max"),
    "automask_area_rel_max": ("automask_area_rel_max", "max"),
    "automask_score_abs": ("automask_score_abs", "max"),
    "automask_masks_matched": ("automask_min_masks", "min"),  # a comparison of almost nothing is no pass
    # video tracking vs SAM2VideoPredictor (parity/video.py), worst over objects and frames
    "video_iou_min": ("video_iou_min", "min"),
    "video_object_score_abs": ("video_object_score_abs", "max"),
    "video_obj_ptr_rel_l2": ("video_obj_ptr_rel_l2", "max"),
}


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max()) if np.size(a) else 0.0


def encoder_metrics(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """Worst relative L2 and max abs over the encoder outputs, per output as well."""
    per = {
        name: {"rel_l2": rel_l2(ours[name], ref), "max_abs": max_abs(ours[name], ref)}
        for name, ref in reference.items()
    }
    return {"encoder_rel_l2": max(v["rel_l2"] for v in per.values()), "encoder_outputs": per}


def decoder_metrics(
    ours: tuple, reference: tuple, band: float, score_tol: float, threshold: float = 0.0, iou_band: float = 0.0
) -> dict:
    """Compare (masks_logits [.., C, H, W], scores [.., C], low_res [.., C, 256, 256]) outputs.

    Best-mask agreement is required only when the reference's top two scores differ by more
    than ``score_tol`` (a tie may go either way). ``mask_iou_min`` is over the pixels whose
    reference logit is at least ``iou_band`` from the threshold (equivalence.decided_iou);
    ``mask_iou_min_all`` over every pixel, for the record.
    """
    (m_ours, s_ours, l_ours), (m_ref, s_ref, l_ref) = ours, reference
    m_ours, m_ref = m_ours.reshape(-1, *m_ours.shape[-2:]), m_ref.reshape(-1, *m_ref.shape[-2:])
    bin_ours, bin_ref = m_ours > threshold, m_ref > threshold
    flips = bin_ours != bin_ref
    s_ours2, s_ref2 = s_ours.reshape(-1, s_ours.shape[-1]), s_ref.reshape(-1, s_ref.shape[-1])
    best_ok = True
    for so, sr in zip(s_ours2, s_ref2):
        top = np.sort(sr)[::-1]
        decisive = len(top) < 2 or top[0] - top[1] > score_tol
        best_ok &= bool(not decisive or np.argmax(so) == np.argmax(sr))
    return {
        "logits_max_abs": max_abs(l_ours, l_ref),
        "score_abs": max_abs(s_ours, s_ref),
        "best_mask_agrees": best_ok,
        "mask_iou_min": min(decided_iou(r, o, iou_band, threshold) for r, o in zip(m_ref, m_ours)),
        "mask_iou_min_all": min(iou(a, b) for a, b in zip(bin_ours, bin_ref)),
        "undecided_pixels": int((np.abs(m_ref - threshold) < iou_band).sum()),
        "flipped_pixels": int(flips.sum()),
        "flips_outside_band": int((flips & (np.abs(m_ref) > band)).sum()),
        "finite": bool(np.isfinite(m_ours).all() and np.isfinite(s_ours).all() and np.isfinite(l_ours).all()),
    }


def check(metrics: dict, gates: dict) -> list[str]:
    """Failures of ``metrics`` against the variant's ``gates`` (one precision's dict)."""
    failures = []
    if metrics.get("finite") is False:
        failures.append("outputs contain NaN or inf")
    if metrics.get("best_mask_agrees") is False:
        failures.append("best mask index differs where the reference scores do not tie")
    for metric, (key, direction) in GATES.items():
        if metric not in metrics:
            continue
        value, limit = metrics[metric], gates[key]
        bad = (not math.isfinite(value)) or (value > limit if direction == "max" else value < limit)
        if bad:
            op, need = (">", "<=") if direction == "max" else ("<", ">=")
            failures.append(f"{metric} = {value:.6g} {op} {limit:g} (would pass with a threshold {need} {value:.6g})")
    return failures
