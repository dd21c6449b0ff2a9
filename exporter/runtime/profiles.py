"""Feeds and outputs of any I/O profile, from and to the default profile's names (numpy only).

The predictor prepares prompts once, in the default contract (square 1024 frame, float labels);
``decoder_feeds`` turns them into a profile's tensors and ``by_role`` reads a profile's outputs
back under the default names (or the extra roles of ``core/contract.py``). A static-shape
folder's decoder takes exactly L prompts of N points: ``static_calls`` splits and pads the
prompts into such calls and ``join_calls`` puts their outputs back together.
"""

from __future__ import annotations

import numpy as np

from ..core import contract as C
from ..core.errors import InputError

PROMPT_TENSORS = ("point_coords", "point_labels", "mask_input", "has_mask_input")  # [L, ...] each


def decoder_feeds(profile: C.Profile, feeds: dict[str, np.ndarray], orig_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """``feeds`` (default names, coordinates in the square frame) as ``profile``'s decoder inputs.

    Args:
        profile: the folder's profile.
        feeds: image_embed, high_res_feats_0/1, point_coords [L, N, 2], point_labels [L, N],
            mask_input [L, 1, 256, 256], has_mask_input [L].
        orig_hw: the original (height, width).
    """
    h, w = orig_hw
    out = {}
    for spec in profile.decoder_inputs:
        value = np.asarray(orig_hw) if spec.what == C.ORIG_SIZE else feeds[spec.what]
        if spec.what == "point_coords" and profile.coords == "longest_side":
            value = value * (np.array([w, h], np.float64) / max(h, w))  # square frame -> longest side 1024
        out[spec.name] = np.ascontiguousarray(value, dtype=spec.dtype)
    return out


def by_role(specs: tuple[C.TensorSpec, ...], values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """A session's outputs (in ``specs`` order) keyed by role: the default profile's names."""
    return {s.what: v for s, v in zip(specs, values)}


def static_calls(
    profile: C.Profile, feeds: dict[str, np.ndarray], truncate: bool = False
) -> list[dict[str, np.ndarray]]:
    """``feeds`` (default names, any L and N) as the calls a static-shape decoder takes: the
    same feeds for a dynamic profile, else chunks of exactly L prompts of N points.

    Points are padded with label -1 at (0, 0), after the prompt's own points: SAM 2 gives
    such points its not-a-point embedding, so the graph computes what the official model
    computes for the same padded prompt (which is not the unpadded prompt's answer:
    docs/mobile.md). The last chunk is filled up by repeating its last prompt. A prompt with
    more than N points raises InputError, unless ``truncate`` (sample inputs only) drops them.
    """
    if not profile.static:
        return [feeds]
    per_call, points = profile.static
    coords, labels = feeds["point_coords"], feeds["point_labels"]
    if coords.shape[1] > points:
        if not truncate:
            raise InputError(
                f"this decoder was exported with --static-shapes {per_call},{points}: a prompt has "
                f"{coords.shape[1]} points (a box counts two); use at most {points} or a dynamic-shape folder"
            )
        coords, labels = coords[:, :points], labels[:, :points]
    pad = points - coords.shape[1]
    prompts = dict(feeds) | {
        "point_coords": np.pad(coords, ((0, 0), (0, pad), (0, 0))),
        "point_labels": np.pad(labels, ((0, 0), (0, pad)), constant_values=C.LABEL_PAD),
    }
    count = len(labels)
    calls = []
    for start in range(0, count, per_call):
        rows = np.minimum(np.arange(start, start + per_call), count - 1)  # repeat the last prompt
        calls.append(dict(feeds) | {k: prompts[k][rows] for k in PROMPT_TENSORS})
    return calls


def join_calls(outputs: list[list[np.ndarray]], count: int) -> list[np.ndarray]:
    """The outputs of :func:`static_calls`' calls (each a list, in the graph's order) as those
    of one call on all ``count`` prompts: concatenated along L, the repeated fill dropped."""
    if len(outputs) == 1 and len(outputs[0][0]) == count:
        return outputs[0]
    return [np.concatenate(parts)[:count] for parts in zip(*outputs)]
