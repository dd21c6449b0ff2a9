"""SAM2Transforms in numpy: image preprocessing, prompt coordinates, mask upsampling.

Each function reproduces the official torch code path formula for formula (same sample
positions, same weights, float32 arithmetic), so results agree with the official predictor to
float32 rounding, not approximately:

- ``preprocess``: ToTensor (/255) -> Resize((1024, 1024)) (bilinear, antialias=True: torch's
  ``_upsample_bilinear2d_aa``, PIL-style triangle filter widened by the scale when shrinking)
  -> Normalize(mean, std).
- ``transform_coords``: x / width, y / height, then * 1024, in float32.
- ``upsample_masks``: ``F.interpolate(mode="bilinear", align_corners=False)`` (no antialias).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..core import contract as C

_MEAN = np.array(C.PIXEL_MEAN, dtype=np.float32)
_STD = np.array(C.PIXEL_STD, dtype=np.float32)


@lru_cache(maxsize=32)
def _aa_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Antialiased bilinear taps: indices and weights, each [out_size, K] (zero-weight padding).

    As torch's ``_compute_weights_aa``: center = scale * (i + 0.5); support = scale when
    shrinking, else 1; triangle filter over [center - support, center + support), normalised.
    """
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    centers = scale * (np.arange(out_size) + 0.5)
    xmin = np.maximum(np.trunc(centers - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(centers + support + 0.5).astype(np.int64), in_size)
    k = int((xmax - xmin).max())
    j = np.arange(k)
    idx = xmin[:, None] + j[None, :]
    w = np.clip(1.0 - np.abs((idx - centers[:, None] + 0.5) * invscale), 0.0, None)
    w[j[None, :] >= (xmax - xmin)[:, None]] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    return np.minimum(idx, in_size - 1), w.astype(np.float32)


def _resample(x: np.ndarray, axis: int, taps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Weighted sum of gathered taps along ``axis`` (float32)."""
    idx, w = taps
    shape = [1] * x.ndim
    shape[axis] = idx.shape[0]
    out = np.zeros(x.shape[:axis] + (idx.shape[0],) + x.shape[axis + 1 :], dtype=np.float32)
    for k in range(idx.shape[1]):
        out += np.take(x, idx[:, k], axis=axis) * w[:, k].reshape(shape)
    return out


def preprocess(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> [1, 3, 1024, 1024] float32, as SAM2Transforms(image)[None]."""
    h, w = image.shape[:2]
    x = image.astype(np.float32) / np.float32(255.0)  # ToTensor
    # torch resamples the last axis (width) first, then the height, keeping float32 between
    x = _resample(x, 1, _aa_taps(w, C.IMAGE_SIZE))
    x = _resample(x, 0, _aa_taps(h, C.IMAGE_SIZE))
    x = (x - _MEAN) / _STD  # Normalize
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def transform_coords(coords: np.ndarray, orig_hw: tuple[int, int], normalize: bool = True) -> np.ndarray:
    """Pixel x,y of the original image -> the 1024 input frame (``normalize=False``: coords
    are already in [0, 1])."""
    coords = np.array(coords, dtype=np.float32)
    if normalize:
        h, w = orig_hw
        coords[..., 0] = coords[..., 0] / np.float32(w)
        coords[..., 1] = coords[..., 1] / np.float32(h)
    return coords * np.float32(C.IMAGE_SIZE)


@lru_cache(maxsize=32)
def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """i0, i1, lambda0, lambda1 per output index, as torch's CPU upsample_bilinear2d.

    The source position is scale * (i + 0.5) - 0.5 with a float32 scale, rounded to float32
    once (the kernel's fused multiply-add), clamped at 0; lambdas are float32.
    """
    scale = float(np.float32(in_size / out_size))
    src = np.maximum((scale * (np.arange(out_size) + 0.5) - 0.5).astype(np.float32), np.float32(0.0))
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    l1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0))
    return i0, i1, np.float32(1.0) - l1, l1


def upsample_masks(logits: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
    """[..., 256, 256] float32 low-res logits -> [..., H, W], bilinear, align_corners=False.

    Width first, then height, as torch nests the two (each output row mixes two source rows
    that were each interpolated along the width); in place to keep memory traffic low.
    """
    h, w = orig_hw
    c0, c1, b0, b1 = _linear_taps(logits.shape[-1], w)
    r0, r1, a0, a1 = _linear_taps(logits.shape[-2], h)
    rows = np.take(logits, c0, axis=-1)
    rows *= b0
    tmp = np.take(logits, c1, axis=-1)
    tmp *= b1
    rows += tmp  # [..., 256, W]
    out = np.take(rows, r0, axis=-2)
    out *= a0[:, None]
    tmp = np.take(rows, r1, axis=-2)
    tmp *= a1[:, None]
    out += tmp  # [..., H, W]
    return out
