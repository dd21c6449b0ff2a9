"""Mask arithmetic of the automatic mask generators in numpy: stability score, boxes,
non-maximum suppression, and the small-region clean-ups of ``min_mask_region_area`` (SAM 2's
on logits, SAM 1's on the final masks).

Each function follows its official counterpart (``sam2.utils.amg``, torchvision's ``nms``,
``SAM2Transforms.postprocess_masks``, ``segment_anything.utils.amg``) in float32 where they compute in float32, so the same
logits give the same decisions.
"""

from __future__ import annotations

import numpy as np


def stability_score(logits: np.ndarray, mask_threshold: float, offset: float) -> np.ndarray:
    """[K, H, W] float32 logits -> [K] float32: IoU of the masks cut at threshold +/- offset.

    As ``calculate_stability_score``: integer pixel counts, divided in float32 (0/0 -> NaN,
    which no threshold keeps).
    """
    inter = np.count_nonzero(logits > np.float32(mask_threshold + offset), axis=(-2, -1))
    union = np.count_nonzero(logits > np.float32(mask_threshold - offset), axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter.astype(np.float32) / union.astype(np.float32)


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """[K, H, W] bool -> [K, 4] int64 XYXY with inclusive max edges; [0, 0, 0, 0] if empty
    (``batched_mask_to_box``)."""
    k, h, w = masks.shape
    rows, cols = masks.any(axis=2), masks.any(axis=1)  # [K, H], [K, W]
    boxes = np.zeros((k, 4), np.int64)
    filled = rows.any(axis=1)
    boxes[:, 0] = np.argmax(cols, axis=1)
    boxes[:, 1] = np.argmax(rows, axis=1)
    boxes[:, 2] = w - 1 - np.argmax(cols[:, ::-1], axis=1)
    boxes[:, 3] = h - 1 - np.argmax(rows[:, ::-1], axis=1)
    boxes[~filled] = 0
    return boxes


def near_crop_edge(boxes: np.ndarray, crop_box: list[int], orig_box: list[int], atol: float = 20.0) -> np.ndarray:
    """[K, 4] crop-frame boxes -> [K] bool: an edge within ``atol`` px of the crop's edge but
    not of the image's (``is_box_near_crop_edge``: such masks are cut off by the crop)."""
    boxes = (boxes + np.array(crop_box[:2] * 2)).astype(np.float32)
    near_crop = np.abs(boxes - np.float32(crop_box)) <= atol
    near_image = np.abs(boxes - np.float32(orig_box)) <= atol
    return (near_crop & ~near_image).any(axis=1)


def box_iou_row(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one XYXY box with [K, 4] boxes, float32 as torchvision's CPU kernel (areas
    without +1)."""
    xx1, yy1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    xx2, yy2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.maximum(np.float32(0), xx2 - xx1) * np.maximum(np.float32(0), yy2 - yy1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area + areas - inter)


def torch_sort_descending(keys: np.ndarray) -> np.ndarray:
    """The indices ``torch.sort(keys, descending=True)`` returns on the CPU, ties included.

    torch sorts (value, index) pairs with libstdc++'s ``std::sort`` (introsort: median-of-three
    quicksort down to runs of 16, heap sort past a depth limit, then insertion sort), which is
    not stable: equal keys end up in an order only that algorithm reproduces. torchvision's
    ``batched_nms`` re-sorts its result that way above 1000 boxes, and the generator's scores
    tie often (every mask of a crop has the same crop-size score), so the order of the masks,
    and which duplicate a later NMS keeps, depends on it. This replays the same algorithm step
    by step on the keys (no NaN).
    """
    key = [float(k) for k in np.asarray(keys, np.float64)]
    idx = list(range(len(key)))

    def swap(i: int, j: int) -> None:
        key[i], key[j] = key[j], key[i]
        idx[i], idx[j] = idx[j], idx[i]

    def adjust_heap(first: int, hole: int, length: int, value: tuple[float, int]) -> None:
        top, child = hole, hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if key[first + child] > key[first + child - 1]:
                child -= 1
            key[first + hole], idx[first + hole] = key[first + child], idx[first + child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            key[first + hole], idx[first + hole] = key[first + child - 1], idx[first + child - 1]
            hole = child - 1
        parent = (hole - 1) // 2
        while hole > top and key[first + parent] > value[0]:
            key[first + hole], idx[first + hole] = key[first + parent], idx[first + parent]
            hole, parent = parent, (parent - 1) // 2
        key[first + hole], idx[first + hole] = value

    def heap_sort(first: int, last: int) -> None:
        length = last - first
        for parent in range((length - 2) // 2, -1, -1):
            adjust_heap(first, parent, length, (key[first + parent], idx[first + parent]))
        while last - first > 1:
            last -= 1
            value = (key[last], idx[last])
            key[last], idx[last] = key[first], idx[first]
            adjust_heap(first, 0, last - first, value)

    def median_to_first(result: int, a: int, b: int, c: int) -> None:
        if key[a] > key[b]:
            swap(result, b if key[b] > key[c] else c if key[a] > key[c] else a)
        else:
            swap(result, a if key[a] > key[c] else c if key[b] > key[c] else b)

    def partition(first: int, last: int) -> int:
        mid = first + (last - first) // 2
        median_to_first(first, first + 1, mid, last - 1)
        pivot, lo, hi = first, first + 1, last
        while True:
            while key[lo] > key[pivot]:
                lo += 1
            hi -= 1
            while key[pivot] > key[hi]:
                hi -= 1
            if lo >= hi:
                return lo
            swap(lo, hi)
            lo += 1

    def introsort(first: int, last: int, depth: int) -> None:
        while last - first > 16:
            if depth == 0:
                heap_sort(first, last)
                return
            depth -= 1
            cut = partition(first, last)
            introsort(cut, last, depth)
            last = cut

    def linear_insert(i: int, guarded_from: int | None) -> None:
        value = (key[i], idx[i])
        if guarded_from is not None and value[0] > key[guarded_from]:  # goes to the front
            key[guarded_from + 1 : i + 1], idx[guarded_from + 1 : i + 1] = key[guarded_from:i], idx[guarded_from:i]
            key[guarded_from], idx[guarded_from] = value
            return
        j = i - 1
        while value[0] > key[j]:
            key[j + 1], idx[j + 1] = key[j], idx[j]
            j -= 1
        key[j + 1], idx[j + 1] = value

    n = len(key)
    if n > 1:
        introsort(0, n, 2 * (n.bit_length() - 1))
        for i in range(1, min(n, 16)):  # insertion sort of the first 16 (guarded) ...
            linear_insert(i, 0)
        for i in range(16, n):  # ... then unguarded: a smaller key sits in front
            linear_insert(i, None)
    return np.asarray(idx, np.int64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """``torchvision.ops.batched_nms`` with one category, as the generator calls it: indices
    of the boxes kept by greedy NMS, highest score first.

    Boxes are visited in torchvision's order (a stable descending sort of the scores); a box
    goes when its float32 IoU with a kept one, compared in double precision as the C++
    kernel does, exceeds the threshold. Above 1000 boxes torchvision takes its per-category
    path, which re-sorts the kept indices with torch's unstable sort
    (:func:`torch_sort_descending`).
    """
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1 :]
        rest = rest[~suppressed[rest]]
        if rest.size:
            iou = box_iou_row(boxes[i], boxes[rest]).astype(np.float64)
            suppressed[rest[iou > iou_threshold]] = True
    keep = np.asarray(keep, np.int64)
    if len(boxes) > 1000:  # torchvision's _batched_nms_vanilla (boxes.numel() > 4000 on CPU)
        keep = np.sort(keep)
        keep = keep[torch_sort_descending(scores[keep])]
    return keep


def _runs(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of set pixels in [R, W] rows: (row, first column, last column), in
    row-major order."""
    edges = np.diff(np.pad(binary, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # same order: one end per start
    return rows, starts, ends - 1


def _components(binary: np.ndarray) -> tuple[np.ndarray, ...]:
    """8-connected components of [K, H, W] bool as horizontal runs: (row, first column, last
    column, root run, area per run index), rows counted over K * H; a component's root is its
    first run in raster order, and ``area[root]`` its pixel count (0 at other indices).

    Components are unions of runs: runs in neighbouring rows of one mask touch (8-connectivity)
    when their column spans overlap after widening by one. Runs are joined by vectorised hooking
    and pointer jumping, and areas summed per root.
    """
    k, h, w = binary.shape
    rows, x0, x1 = _runs(binary.reshape(k * h, w))
    stride = w + 2  # row-major keys, room for -1 and w
    start_key, end_key = rows * stride + x0, rows * stride + x1
    below = (rows + 1) * stride
    lo = np.searchsorted(end_key, below + x0 - 1)  # first run below ending at >= x0 - 1
    hi = np.searchsorted(start_key, below + x1 + 1, side="right")  # past the last starting <= x1 + 1
    hi[(rows % h) == h - 1] = lo[(rows % h) == h - 1]  # the last row of a mask has no row below
    n_edges = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(len(rows)), n_edges)
    b = np.repeat(lo - np.cumsum(n_edges) + n_edges, n_edges) + np.arange(n_edges.sum())
    parent = np.arange(len(rows))
    while True:
        pa, pb = parent[a], parent[b]
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))  # hook the larger root
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
        if np.array_equal(parent[a], parent[b]):
            break
    area = np.bincount(parent, weights=x1 - x0 + 1, minlength=len(rows))
    return rows, x0, x1, parent, area


def _paint(shape: tuple[int, int, int], rows, x0, x1) -> np.ndarray:
    """[K, H, W] bool with the given runs set."""
    k, h, w = shape
    paint = np.zeros((k * h, w + 1), np.int32)  # +1 at a run's start, -1 past its end
    np.add.at(paint, (rows, x0), 1)
    np.add.at(paint, (rows, x1 + 1), -1)
    return (np.cumsum(paint, axis=1)[:, :w] > 0).reshape(k, h, w)


def small_components(binary: np.ndarray, max_area: int) -> np.ndarray:
    """[K, H, W] bool -> [K, H, W] bool: the pixels of 8-connected components of at most
    ``max_area`` pixels, each mask on its own."""
    rows, x0, x1, parent, area = _components(binary)
    small = area[parent] <= max_area
    return _paint(binary.shape, rows[small], x0[small], x1[small])


def fill_small_regions(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, bool]:
    """SAM 1's clean-up of one [H, W] bool mask (``SamAutomaticMaskGenerator`` with
    ``min_mask_region_area``, which calls OpenCV): holes (8-connected background components)
    of fewer than ``min_area`` pixels filled, then islands that small dropped, keeping the
    largest island (the first in raster order on a tie) when all are that small. Returns the
    mask and whether either step changed anything."""
    holes = small_components(~mask[None], min_area - 1)[0]
    filled = mask | holes
    rows, x0, x1, parent, area = _components(filled[None])
    small = area <= min_area - 1
    small[area == 0] = False  # not roots
    if not small.any():
        return filled, bool(holes.any())
    keep = ~small[parent]
    if not keep.any():  # every island is small: the largest stays
        keep = parent == np.argmax(area)
    return _paint((1, *mask.shape), rows[keep], x0[keep], x1[keep])[0], True


def remove_small_regions(logits: np.ndarray, max_area: int, mask_threshold: float = 0.0) -> np.ndarray:
    """Fill holes and drop specks of at most ``max_area`` pixels in [K, H, W] logits.

    As ``SAM2Transforms.postprocess_masks`` with ``max_hole_area = max_sprinkle_area =
    min_mask_region_area``: background components that small get ``threshold + 10`` and
    foreground components that small get ``threshold - 10``, both found on the input logits.
    (The official code needs sam2's CUDA extension for this and skips it, with a warning,
    without one.)
    """
    if max_area <= 0:
        return logits
    out = logits.astype(np.float32, copy=True)
    foreground = logits > mask_threshold
    # both passes look at the original masks (holes and specks are disjoint pixel sets)
    out[small_components(~foreground, max_area)] = mask_threshold + 10.0
    out[small_components(foreground, max_area)] = mask_threshold - 10.0
    return out
