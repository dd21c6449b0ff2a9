"""SAM2OnnxAutomaticMaskGenerator: the official SAM2AutomaticMaskGenerator on ONNX Runtime.

Same parameters, defaults and output records as ``sam2.automatic_mask_generator``: a grid of
single-click prompts per image crop, each decoded into (up to) three masks, filtered by
predicted IoU and stability, cleared of masks cut by a crop's edge, de-duplicated by box NMS
within each crop and then across crops. Steps that decide which masks survive follow the
official code in float32 (see ``masks.py``), so the same weights give the same masks.

Where it is faster than the official generator (same results):

- the decoder is the exported graph (about 25 ms per prompt on 2 cores, batched on its L
  axis), where the official one repeats the image embedding per prompt in torch eager;
- masks are upsampled to the crop's size only after the predicted-IoU filter, in chunks,
  where the official code upsamples every mask of the batch first;
- surviving masks are held as packed bits and encoded (RLE, uncropped) only once they have
  survived NMS, where the official code encodes every mask it has not yet filtered.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import product
from pathlib import Path

import numpy as np

from ..core import contract as C
from ..core.errors import InputError
from .inputs import as_rgb
from .masks import mask_boxes, near_crop_edge, nms, remove_small_regions, stability_score
from .predictor import Embedding, ImageLike, SAM2OnnxPredictor
from .rle import coco_rle, mask_to_rle
from .transforms import upsample_masks

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
UPSAMPLE_PIXELS = 24_000_000  # float32 logits upsampled at once per worker (~100 MB), whatever the image size

# Prompts per decoder call on CPU. Measured on 2 cores (tiny): 64 prompts as one L=64 call take
# 4-5 s on each of the first two calls (onnxruntime's memory arena growing to ~GBs), then 1.65 s;
# as L=8 calls, 1.7 s from the first call on, bit-identical to L=64.
CPU_DECODER_BATCH = 8

Progress = Callable[[int, int], None]  # (steps done, steps in all): encoder runs and point batches


@dataclass(frozen=True)
class AutomaskParams:
    """The official generator's parameters, with its defaults (see SAM2AutomaticMaskGenerator)."""

    points_per_side: int | None = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    point_grids: list | None = field(default=None, compare=False)
    min_mask_region_area: int = 0
    output_mode: str = "binary_mask"
    use_m2m: bool = False
    multimask_output: bool = True

    def __post_init__(self) -> None:
        if (self.points_per_side is None) == (self.point_grids is None):
            raise InputError(
                "give exactly one of points_per_side and point_grids "
                f"(got {'both' if self.point_grids is not None else 'neither'})"
            )
        for name in ("points_per_batch", "crop_n_points_downscale_factor"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise InputError(f"{name} must be an integer >= 1, not {getattr(self, name)!r}")
        for name in ("crop_n_layers", "min_mask_region_area"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise InputError(f"{name} must be an integer >= 0, not {getattr(self, name)!r}")
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be a number in [0, 1], not {value!r}")
        if not isinstance(self.crop_overlap_ratio, (int, float)) or not 0.0 <= self.crop_overlap_ratio < 1.0:
            raise InputError(f"crop_overlap_ratio must be in [0, 1), not {self.crop_overlap_ratio!r}")
        for name in ("stability_score_offset", "mask_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{name} must be a finite number, not {value!r}")
        if self.output_mode not in OUTPUT_MODES:
            raise InputError(f"output_mode must be one of {', '.join(OUTPUT_MODES)}, not {self.output_mode!r}")
        if self.points_per_side is not None:
            if not _is_int(self.points_per_side) or self.points_per_side < 1:
                raise InputError(f"points_per_side must be an integer >= 1, not {self.points_per_side!r}")
            fewest = self.points_per_side // self.crop_n_points_downscale_factor**self.crop_n_layers
            if fewest < 1:
                raise InputError(
                    f"points_per_side {self.points_per_side} leaves no points in crop layer "
                    f"{self.crop_n_layers} (divided by {self.crop_n_points_downscale_factor} per layer)"
                )
        else:
            grids = self.point_grids
            if not isinstance(grids, (list, tuple)) or len(grids) != self.crop_n_layers + 1:
                n = len(grids) if isinstance(grids, (list, tuple)) else type(grids).__name__
                raise InputError(
                    f"point_grids must be a list of crop_n_layers + 1 = {self.crop_n_layers + 1} "
                    f"arrays of [N, 2] points in [0, 1], got {n}"
                )
            for i, grid in enumerate(grids):
                a = np.asarray(grid, dtype=np.float64) if np.size(grid) else np.zeros((0, 2))
                if a.ndim != 2 or a.shape[1] != 2 or len(a) == 0:
                    raise InputError(f"point_grids[{i}] must be a non-empty [N, 2] array, not shape {a.shape}")
                if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                    raise InputError(f"point_grids[{i}] must hold x, y in [0, 1] (fractions of the crop)")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameters the official generator takes (the fields, less those it lacks)."""
        return tuple(cls.__dataclass_fields__)

    def grids(self) -> list[np.ndarray]:
        """Normalised [N, 2] points per crop layer."""
        if self.point_grids is not None:
            return [np.asarray(g, dtype=np.float64) for g in self.point_grids]
        return [
            point_grid(int(self.points_per_side / self.crop_n_points_downscale_factor**i))
            for i in range(self.crop_n_layers + 1)
        ]

    def as_dict(self) -> dict:
        """Keyword arguments for SAM2AutomaticMaskGenerator (and for JSON, grids as lists)."""
        out = {k: v for k, v in asdict(self).items() if k in self.names()}
        if self.point_grids is not None:
            out["point_grids"] = [np.asarray(g, dtype=np.float64).tolist() for g in self.point_grids]
        return out


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def point_grid(n_per_side: int) -> np.ndarray:
    """[n*n, 2] points evenly spaced in [0, 1]^2, x fastest (``build_point_grid``)."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    return np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)


def crop_boxes(hw: tuple[int, int], n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """XYXY crop boxes and their layer: the whole image, then (2^i)^2 overlapping crops per
    layer i (``generate_crop_boxes``)."""
    h, w = hw
    boxes, layers = [[0, 0, w, h]], [0]
    for i in range(n_layers):
        n = 2 ** (i + 1)
        overlap = int(overlap_ratio * min(h, w) * (2 / n))
        crop_w = int(math.ceil((overlap * (n - 1) + w) / n))
        crop_h = int(math.ceil((overlap * (n - 1) + h) / n))
        xs = [int((crop_w - overlap) * j) for j in range(n)]
        ys = [int((crop_h - overlap) * j) for j in range(n)]
        for x0, y0 in product(xs, ys):
            boxes.append([x0, y0, min(x0 + crop_w, w), min(y0 + crop_h, h)])
            layers.append(i + 1)
    return boxes, layers


@dataclass
class _Found:
    """Masks kept so far, one entry per mask in each list (boxes and points in the crop's
    frame until the crop's NMS, in the image's after it)."""

    boxes: list = field(default_factory=list)  # [4] int64 XYXY
    iou_preds: list = field(default_factory=list)  # float32
    stability: list = field(default_factory=list)  # float32
    points: list = field(default_factory=list)  # [2] float32
    crops: list = field(default_factory=list)  # index into the crop boxes
    bits: list = field(default_factory=list)  # np.packbits of the crop-frame mask

    def extend(self, other: _Found) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def take(self, keep) -> _Found:
        return _Found(*([getattr(self, name)[i] for i in keep] for name in self.__dataclass_fields__))


class SAM2OnnxAutomaticMaskGenerator:
    """Whole-image segmentation without prompts, on exported SAM 2 graphs; no torch.

    Args:
        model: a model folder (``sam2-onnx export``) or a :class:`SAM2OnnxPredictor`.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``, when a folder is given.
        threads: ONNX Runtime threads (when a folder is given) and mask post-processing threads.
        decoder_batch: prompts per decoder call (default 8 on CPU, ``points_per_batch``
            elsewhere); it changes speed and memory, not the masks.
        **params: the official ``SAM2AutomaticMaskGenerator``'s parameters
            (:class:`AutomaskParams`: ``points_per_side``, ``pred_iou_thresh``, ...); unknown
            names are refused.
    """

    official = "SAM2AutomaticMaskGenerator"
    Params = AutomaskParams  # the official generator's parameters
    Predictor = SAM2OnnxPredictor  # what a model folder is opened with
    point_dtype = np.float32  # grid points as the official generator holds them

    def __init__(
        self,
        model: str | Path | SAM2OnnxPredictor,
        *,
        precision: str = "fp32",
        threads: int | None = None,
        decoder_batch: int | None = None,
        **params,
    ):
        unknown = sorted(set(params) - set(self.Params.names()))
        if unknown:
            raise InputError(
                f"unknown parameter(s) {', '.join(unknown)}; the official {self.official} takes: "
                f"{', '.join(self.Params.names())}"
            )
        self.params = self.Params(**params)
        self.point_grids = self.params.grids()
        self.predictor = (
            model if isinstance(model, self.Predictor) else self.Predictor(model, precision=precision, threads=threads)
        )
        if decoder_batch is None:
            on_cpu = self.predictor.sessions.decoder.get_providers()[0] == "CPUExecutionProvider"
            decoder_batch = CPU_DECODER_BATCH if on_cpu else self.params.points_per_batch
        if not _is_int(decoder_batch) or decoder_batch < 1:
            raise InputError(f"decoder_batch must be an integer >= 1, not {decoder_batch!r}")
        self.decoder_batch = decoder_batch
        self.workers = threads or os.cpu_count() or 1  # threads for the mask post-processing
        self.seconds: dict[str, float] = {}

    def generate(self, image: ImageLike, progress: Progress | None = None) -> list[dict]:
        """Every mask the official generator would keep for ``image``.

        Args:
            image: HxWx3 uint8 RGB array or PIL image.
            progress: called as ``progress(done, total)`` after each encoder run and each batch
                of points.

        Returns:
            One record per mask, as the official generator: ``segmentation`` (HxW bool array,
            or an RLE dict per ``output_mode``), ``area`` (int), ``bbox`` (XYWH),
            ``predicted_iou``, ``point_coords`` ([[x, y]]), ``stability_score``, ``crop_box``
            (XYWH). ``self.seconds`` then holds the time spent in the encoder, the decoder and
            the rest.
        """
        p = self.params
        image = as_rgb(image)
        h, w = image.shape[:2]
        boxes, layers = crop_boxes((h, w), p.crop_n_layers, p.crop_overlap_ratio)
        total = sum(1 + -(-len(self.point_grids[layer]) // p.points_per_batch) for layer in layers)
        self.seconds = {"encoder": 0.0, "decoder": 0.0, "masks": 0.0}
        self._steps, self._total, self._progress = 0, total, progress
        found = _Found()
        for index, (box, layer) in enumerate(zip(boxes, layers)):
            found.extend(self._crop(image, box, index, layer))
        if len(boxes) > 1:  # duplicates between crops: prefer masks from smaller crops
            t0 = time.perf_counter()
            areas = np.array([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes], np.float32)
            scores = np.float32(1) / areas[np.asarray(found.crops, np.int64)]
            found = found.take(nms(np.array(found.boxes).reshape(-1, 4), scores, p.crop_nms_thresh))
            self.seconds["masks"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        records = self._records(found, boxes, (h, w))
        self.seconds["masks"] += time.perf_counter() - t0
        return records

    # --- steps ------------------------------------------------------------------------------

    def _step(self) -> None:
        self._steps += 1
        if self._progress is not None:
            self._progress(self._steps, self._total)

    def _crop(self, image: np.ndarray, box: list[int], index: int, layer: int) -> _Found:
        p = self.params
        x0, y0, x1, y1 = box
        t0 = time.perf_counter()
        embedding = self.predictor.embed(image[y0:y1, x0:x1])
        self.seconds["encoder"] += time.perf_counter() - t0
        self._step()
        ch, cw = embedding.orig_hw
        points = self.point_grids[layer] * np.array([cw, ch])  # crop pixels, float64 as official
        found = _Found()
        for start in range(0, len(points), p.points_per_batch):
            found.extend(self._batch(embedding, points[start : start + p.points_per_batch], box, image.shape[:2]))
            self._step()
        t0 = time.perf_counter()
        found.crops = [index] * len(found.boxes)
        boxes = np.array(found.boxes, np.int64).reshape(-1, 4)
        found = found.take(nms(boxes, np.array(found.iou_preds, np.float32), p.box_nms_thresh))
        found.boxes = [b + np.array([x0, y0, x0, y0]) for b in found.boxes]  # back to the image frame
        found.points = [pt + np.array([x0, y0], np.float32) for pt in found.points]
        self.seconds["masks"] += time.perf_counter() - t0
        return found

    def _decode(
        self, embedding: Embedding, points: np.ndarray, mask_input=None, multimask: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """One point prompt per row: [k, C, 256, 256] logits and [k, C] scores."""
        t0 = time.perf_counter()
        step = self.decoder_batch
        outs = [
            self.predictor.decode_logits(
                embedding,
                points[s : s + step, None, :],
                np.ones((len(points[s : s + step]), 1)),
                mask_input=None if mask_input is None else mask_input[s : s + step],
                multimask_output=multimask,
            )
            for s in range(0, len(points), step)
        ]
        self.seconds["decoder"] += time.perf_counter() - t0
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def _batch(
        self, embedding: Embedding, points: np.ndarray, crop_box: list[int], image_hw: tuple[int, int]
    ) -> _Found:
        """Decode one batch of points and keep the masks that pass every filter."""
        p = self.params
        points = points.astype(self.point_dtype)
        low_res, iou_preds = self._decode(embedding, points, multimask=p.multimask_output)
        per_point = low_res.shape[1]
        low_res = low_res.reshape(-1, C.LOW_RES_SIZE, C.LOW_RES_SIZE)
        iou_preds = iou_preds.reshape(-1)
        points = np.repeat(points, per_point, axis=0)
        if p.use_m2m:  # one refinement step: each mask fed back with its own point, single output
            refined = [
                self._decode(
                    embedding,
                    points[s : s + p.points_per_batch],
                    np.clip(low_res[s : s + p.points_per_batch, None], -C.LOW_RES_CLAMP, C.LOW_RES_CLAMP),
                    multimask=False,
                )
                for s in range(0, len(points), p.points_per_batch)
            ]
            low_res = np.concatenate([r[0] for r in refined])[:, 0]
            iou_preds = np.concatenate([r[1] for r in refined])[:, 0]
        t0 = time.perf_counter()
        keep = np.flatnonzero(iou_preds > p.pred_iou_thresh) if p.pred_iou_thresh > 0 else np.arange(len(iou_preds))
        ch, cw = embedding.orig_hw
        # chunks bound the memory of the full-size logits and spread over the cores (numpy
        # releases the GIL in the array work): the decoder is idle meanwhile
        chunk = max(1, min(UPSAMPLE_PIXELS // (ch * cw), -(-len(keep) // self.workers)))
        chunks = [keep[s : s + chunk] for s in range(0, len(keep), chunk)]
        work = partial(self._filter, low_res, iou_preds, points, embedding, crop_box, image_hw)
        found = _Found()
        if len(chunks) > 1 and self.workers > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                for part in pool.map(work, chunks):
                    found.extend(part)
        else:
            for part in map(work, chunks):
                found.extend(part)
        self.seconds["masks"] += time.perf_counter() - t0
        return found

    def _filter(
        self,
        low_res: np.ndarray,
        iou_preds: np.ndarray,
        points: np.ndarray,
        embedding,
        crop_box: list[int],
        image_hw: tuple[int, int],
        rows: np.ndarray,
    ) -> _Found:
        """Masks ``rows`` of a batch at the crop's size: stability filter, binarisation, boxes,
        crop-edge filter; the survivors as packed bits."""
        p = self.params
        logits = self._crop_logits(low_res[rows], embedding)  # [k, ch, cw] as the official masks
        stability = stability_score(logits, p.mask_threshold, p.stability_score_offset)
        if p.stability_score_thresh > 0:
            ok = stability >= p.stability_score_thresh
            logits, rows, stability = logits[ok], rows[ok], stability[ok]
        masks = logits > p.mask_threshold
        del logits
        boxes = mask_boxes(masks)
        inside = np.flatnonzero(~near_crop_edge(boxes, crop_box, [0, 0, image_hw[1], image_hw[0]]))
        return _Found(
            [boxes[i] for i in inside],
            [iou_preds[rows[i]] for i in inside],
            [stability[i] for i in inside],
            [points[rows[i]] for i in inside],
            [],
            [np.packbits(masks[i]) for i in inside],
        )

    def _crop_logits(self, low_res: np.ndarray, embedding: Embedding) -> np.ndarray:
        """[k, 256, 256] low-res logits -> [k, crop H, crop W], as SAM2ImagePredictor returns
        them (holes and specks of ``min_mask_region_area`` first, as its transforms do)."""
        logits = remove_small_regions(low_res, self.params.min_mask_region_area)
        return upsample_masks(logits, embedding.orig_hw)

    @staticmethod
    def _full_mask(found: _Found, i: int, boxes: list[list[int]], image_hw: tuple[int, int]) -> np.ndarray:
        """Mask ``i`` of ``found`` in the whole image's frame: [H, W] bool."""
        x0, y0, x1, y1 = boxes[found.crops[i]]
        mask = np.zeros(image_hw, bool)
        mask[y0:y1, x0:x1] = np.unpackbits(found.bits[i], count=(y1 - y0) * (x1 - x0)).reshape(y1 - y0, x1 - x0)
        return mask

    def _records(
        self, found: _Found, boxes: list[list[int]], image_hw: tuple[int, int], masks: list | None = None
    ) -> list[dict]:
        """The official records of ``found`` (``masks``: their whole-image masks, if made already)."""
        records = []
        for i in range(len(found.boxes)):
            x0, y0, x1, y1 = boxes[found.crops[i]]
            mask = self._full_mask(found, i, boxes, image_hw) if masks is None else masks[i]
            segmentation = mask
            if self.params.output_mode != "binary_mask":
                segmentation = mask_to_rle(mask)
                if self.params.output_mode == "coco_rle":
                    segmentation = coco_rle(segmentation)
            bx0, by0, bx1, by1 = (float(v) for v in found.boxes[i])
            records.append(
                {
                    "segmentation": segmentation,
                    "area": int(np.count_nonzero(mask)),
                    "bbox": [bx0, by0, bx1 - bx0, by1 - by0],
                    "predicted_iou": float(found.iou_preds[i]),
                    "point_coords": [[float(v) for v in found.points[i]]],
                    "stability_score": float(found.stability[i]),
                    "crop_box": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                }
            )
        return records
