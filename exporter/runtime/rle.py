"""Run-length encoded masks in the formats the official generator returns, numpy only.

- uncompressed RLE: ``{"size": [H, W], "counts": [n0, n1, ...]}``, runs over the mask in
  column-major (Fortran) order, starting with a run of zeros (0 when the first pixel is set);
  what ``sam2.utils.amg.mask_to_rle_pytorch`` writes.
- COCO RLE: the same runs as pycocotools' compressed string (``mask.frPyObjects`` on the
  uncompressed RLE, counts decoded to text), so ``pycocotools.mask.decode`` reads it without
  pycocotools being needed to write (or read) it.
"""

from __future__ import annotations

import numpy as np


def mask_to_rle(mask: np.ndarray) -> dict:
    """[H, W] bool -> uncompressed RLE."""
    h, w = mask.shape
    flat = np.asarray(mask, bool).T.ravel()  # column-major, as COCO
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [h * w]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [h, w], "counts": counts}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Uncompressed or COCO RLE -> [H, W] bool."""
    h, w = rle["size"]
    counts = rle["counts"]
    counts = np.asarray(coco_decode(counts) if isinstance(counts, str) else counts, np.int64)
    values = np.arange(len(counts)) % 2 == 1  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts cover {flat.size} pixels, size {h}x{w} has {h * w}")
    return flat.reshape(w, h).T


def rle_area(rle: dict) -> int:
    """Foreground pixels of an uncompressed RLE."""
    return int(sum(rle["counts"][1::2]))


def coco_counts(counts: list[int]) -> str:
    """pycocotools' ``rleToString``: each count (minus the one two places back, from the
    fourth on) as little-endian 5-bit groups, 0x20 marking "more", sign-extended, + 48."""
    out = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as C's on a long
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def coco_decode(text: str) -> list[int]:
    """pycocotools' ``rleFrString``: the inverse of :func:`coco_counts`."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x, shift, more = 0, 0, True
        while more:
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                x |= -1 << shift  # sign-extend
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def coco_rle(rle: dict) -> dict:
    """Uncompressed RLE -> COCO compressed RLE ``{"size": [H, W], "counts": str}``."""
    return {"size": list(rle["size"]), "counts": coco_counts(rle["counts"])}
