"""SAM1OnnxAutomaticMaskGenerator: segment_anything's SamAutomaticMaskGenerator on ONNX Runtime.

The same grid of single clicks per crop, filters, NMS and records as the SAM 2 generator
(automask.py), with what SAM 1's official generator does differently:

- its parameters: no ``mask_threshold``, ``use_m2m`` or ``multimask_output`` (SAM 1 always
  takes its three multimask tokens and thresholds at 0.0), and ``pred_iou_thresh`` 0.88;
- masks come to the crop's size as ``Sam.postprocess_masks`` makes them: low-res logits to the
  1024 frame, cropped to the resized image, then to the crop's size (SAM 2: straight there);
- grid points stay float64, as the official records carry them;
- ``min_mask_region_area`` cleans the final masks (holes, then islands, fewer pixels than it)
  and reruns box NMS preferring masks it did not change, as ``postprocess_small_regions``
  does with OpenCV (masks.fill_small_regions: numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .automask import AutomaskParams, SAM2OnnxAutomaticMaskGenerator, _Found
from .masks import fill_small_regions, mask_boxes, nms
from .sam1_predictor import Sam1Embedding, SAM1OnnxPredictor
from .sam1_transforms import postprocess_masks

SAM2_ONLY = ("mask_threshold", "use_m2m", "multimask_output")  # SAM2AutomaticMaskGenerator's additions


@dataclass(frozen=True)
class Sam1AutomaskParams(AutomaskParams):
    """SamAutomaticMaskGenerator's parameters, with its defaults."""

    pred_iou_thresh: float = 0.88

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(k for k in cls.__dataclass_fields__ if k not in SAM2_ONLY)


class SAM1OnnxAutomaticMaskGenerator(SAM2OnnxAutomaticMaskGenerator):
    """Whole-image segmentation without prompts, on exported SAM 1 graphs; no torch.

    Args:
        model: a SAM 1 model folder (``sam2-onnx export sam_vit_b``) or a :class:`SAM1OnnxPredictor`.
        precision, threads, decoder_batch: as :class:`SAM2OnnxAutomaticMaskGenerator`.
        **params: the official ``SamAutomaticMaskGenerator``'s parameters (:class:`Sam1AutomaskParams`).
    """

    official = "SamAutomaticMaskGenerator"
    Params = Sam1AutomaskParams
    Predictor = SAM1OnnxPredictor
    point_dtype = np.float64

    def _crop_logits(self, low_res: np.ndarray, embedding: Sam1Embedding) -> np.ndarray:
        """[k, 256, 256] low-res logits -> [k, crop H, crop W], as SamPredictor returns them."""
        return postprocess_masks(low_res, embedding.input_hw, embedding.orig_hw)

    def _records(self, found: _Found, boxes: list[list[int]], image_hw: tuple[int, int], masks=None) -> list[dict]:
        area = self.params.min_mask_region_area
        if area > 0 and found.boxes:
            masks, scores = [], []
            for i in range(len(found.boxes)):
                mask, changed = fill_small_regions(self._full_mask(found, i, boxes, image_hw), area)
                masks.append(mask)
                scores.append(float(not changed))  # NMS prefers masks the clean-up left alone
            new_boxes = mask_boxes(np.stack(masks))
            keep = nms(
                new_boxes, np.array(scores, np.float32), max(self.params.box_nms_thresh, self.params.crop_nms_thresh)
            )
            for i in keep:
                found.boxes[i] = new_boxes[i]
            found, masks = found.take(keep), [masks[i] for i in keep]
        return super()._records(found, boxes, image_hw, masks)


def generator_class(model_dir) -> type[SAM2OnnxAutomaticMaskGenerator]:
    """The generator for a model folder's family: SAM 1's or SAM 2's (from its manifest)."""
    from pathlib import Path

    from ..core.manifest import manifest_profile, read_manifest

    family = manifest_profile(read_manifest(Path(model_dir))).family
    return SAM1OnnxAutomaticMaskGenerator if family == "sam1" else SAM2OnnxAutomaticMaskGenerator
