"""The memory bank of one tracked object: what SAM2VideoPredictor keeps per frame, and which of it
a frame reads (``SAM2Base._prepare_memory_conditioned_features``), as numpy.

An object's outputs are two dicts, ``cond`` (frames the user prompted) and ``non_cond`` (frames
tracked), frame index -> :class:`FrameOut`, filled in the order sam2 fills its own, because the
order of the memories is the order of the attention's keys. The memory features are kept as
bfloat16, as sam2 stores them (``maskmem_features.to(torch.bfloat16)``): round to nearest even,
read back exactly as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.video_contract import HIDDEN, MEMORY


def to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest, ties to even (torch's rule)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
    out = (rounded >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():  # keep NaN a NaN (rounding could carry it into infinity)
        out[nan] = np.uint16(0x7FC0)
    return out


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32, exactly."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


@dataclass
class FrameOut:
    """One object's answer on one frame (sam2's ``compact_current_out``)."""

    pred_masks: np.ndarray  # [1, 1, 256, 256] float32 low-res logits (holes filled if configured)
    obj_ptr: np.ndarray  # [1, 256] float32
    object_score_logits: np.ndarray  # [1, 1] float32
    maskmem: np.ndarray | None = None  # [1, 64, 64, 64] bfloat16 bits (uint16); None until encoded


@dataclass
class ObjectOutputs:
    """``cond`` and ``non_cond``: frame index -> FrameOut (sam2's output_dict of one object)."""

    cond: dict[int, FrameOut] = field(default_factory=dict)
    non_cond: dict[int, FrameOut] = field(default_factory=dict)

    def get(self, frame_idx: int) -> FrameOut | None:
        out = self.cond.get(frame_idx)
        return out if out is not None else self.non_cond.get(frame_idx)

    def clear(self) -> None:
        self.cond.clear()
        self.non_cond.clear()


def select_closest_cond_frames(frame_idx: int, cond: dict, max_cond_frames: int) -> tuple[dict, dict]:
    """sam2_utils.select_closest_cond_frames: up to ``max_cond_frames`` conditioning frames (-1:
    all) -> (selected, unselected): the closest before, the closest at or after, then the nearest."""
    if max_cond_frames == -1 or len(cond) <= max_cond_frames:
        return cond, {}
    selected = {}
    before = max((t for t in cond if t < frame_idx), default=None)
    if before is not None:
        selected[before] = cond[before]
    after = min((t for t in cond if t >= frame_idx), default=None)
    if after is not None:
        selected[after] = cond[after]
    remain = max_cond_frames - len(selected)
    rest = sorted((t for t in cond if t not in selected), key=lambda x: abs(x - frame_idx))[:remain]
    selected.update((t, cond[t]) for t in rest)
    return selected, {t: v for t, v in cond.items() if t not in selected}


def memory_feeds(settings: dict, frame_idx: int, outputs: ObjectOutputs, num_frames: int, reverse: bool) -> dict:
    """The memory_attention graph's memory inputs for ``frame_idx`` (a frame that does not start
    the object): maskmem_features [T, 64, 64, 64], maskmem_t_pos [T], obj_ptrs [P, 256],
    obj_ptr_tpos [P], chosen and ordered by sam2's rules (the spatial memories: the selected
    conditioning frames, then the ``num_maskmem - 1`` previous frames in the tracking direction at
    the configured stride; the pointers: conditioning frames not in the future, then up to
    ``max_obj_ptrs_in_encoder - 1`` previous frames)."""
    num_maskmem, stride = settings["num_maskmem"], settings["memory_temporal_stride_for_eval"]
    selected, unselected = select_closest_cond_frames(frame_idx, outputs.cond, settings["max_cond_frames_in_attn"])
    chosen = [(0, out) for out in selected.values()]
    for t_pos in range(1, num_maskmem):
        t_rel = num_maskmem - t_pos  # frames before the current one
        if t_rel == 1:
            prev = frame_idx + t_rel if reverse else frame_idx - t_rel
        elif not reverse:
            prev = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        else:
            prev = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
        out = outputs.non_cond.get(prev)
        chosen.append((t_pos, out if out is not None else unselected.get(prev)))
    chosen = [(t_pos, out) for t_pos, out in chosen if out is not None]
    feeds = {
        "maskmem_features": np.concatenate([from_bfloat16(out.maskmem) for _, out in chosen])
        if chosen
        else np.zeros((0, *MEMORY[1:]), np.float32),
        "maskmem_t_pos": np.array([t for t, _ in chosen], np.int64),
    }
    max_ptrs = min(num_frames, settings["max_obj_ptrs_in_encoder"])
    if settings["only_obj_ptrs_in_the_past_for_eval"]:
        ptr_cond = {t: out for t, out in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)}
    else:
        ptr_cond = selected
    sign = -1 if reverse else 1
    pos_and_ptrs = [
        ((frame_idx - t) * sign if settings["use_signed_tpos_enc_to_obj_ptrs"] else abs(frame_idx - t), out.obj_ptr)
        for t, out in ptr_cond.items()
    ]
    for t_diff in range(1, max_ptrs):
        t = frame_idx + t_diff if reverse else frame_idx - t_diff
        if t < 0 or t >= num_frames:
            break
        out = outputs.non_cond.get(t, unselected.get(t))
        if out is not None:
            pos_and_ptrs.append((t_diff, out.obj_ptr))
    # sam2 divides the integer offsets by t_diff_max in float32 (torch's true division)
    t_diff_max = np.float32(max(max_ptrs - 1, 1))
    feeds["obj_ptrs"] = (
        np.concatenate([p for _, p in pos_and_ptrs]).astype(np.float32)
        if pos_and_ptrs
        else np.zeros((0, HIDDEN), np.float32)
    )
    feeds["obj_ptr_tpos"] = np.array([p for p, _ in pos_and_ptrs], np.float32) / t_diff_max
    return feeds
