"""Feeds and outputs of any I/O profile, from and to the default profile's names (numpy only).

The predictor prepares prompts once, in the default contract (square 1024 frame, float labels);
``decoder_feeds`` turns them into a profile's tensors and ``by_role`` reads a profile's outputs
back under the default names (or the extra roles of ``core/contract.py``).
"""

from __future__ import annotations

import numpy as np

from ..core import contract as C


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
