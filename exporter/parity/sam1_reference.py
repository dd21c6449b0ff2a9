"""The official SAM 1 predictor (``segment_anything.SamPredictor``) behind the parity engine's
reference API: ``set_image``, ``input_tensor``, ``features`` and ``predict`` with the prompt
batches the engine's kinds use.

``SamPredictor.predict`` takes one prompt per call (several boxes need ``predict_torch``); a
batch of B prompts is asked one at a time and stacked, which is what the official predictor
computes for each of them (its decoder has no cross-prompt terms).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..core import contract as C


def sam1_official_input(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB array through segment_anything's own ResizeLongestSide and
    ``Sam.preprocess``: input_image [1, 3, 1024, 1024] float32, as ``SamPredictor.set_image``
    builds it."""
    import torch
    from segment_anything.modeling import Sam
    from segment_anything.utils.transforms import ResizeLongestSide

    resized = ResizeLongestSide(C.IMAGE_SIZE).apply_image(image)
    # Sam.preprocess reads only these three attributes: no need to build a whole model
    sam = SimpleNamespace(
        pixel_mean=torch.tensor(C.SAM1_PIXEL_MEAN).view(-1, 1, 1),
        pixel_std=torch.tensor(C.SAM1_PIXEL_STD).view(-1, 1, 1),
        image_encoder=SimpleNamespace(img_size=C.IMAGE_SIZE),
    )
    return Sam.preprocess(sam, torch.as_tensor(resized).permute(2, 0, 1).contiguous()[None]).numpy()


class Sam1Reference:
    """``SamPredictor(model)`` with the engine's reference API.

    ``single_mask``: answer ``multimask_output=False`` as ``SamOnnxModel(return_single_mask=True)``
    does (a ``sam1_single`` folder), with ``select_masks``' rule on SamPredictor's four tokens:
    score = predicted IoU + (points - 2.5) * [1000, 0, 0, 0], the mask of the highest score, where
    points counts what the prompt encoder sees (the padding point without a box, two box corners).
    """

    def __init__(self, model, single_mask: bool = False):
        from segment_anything import SamPredictor

        self.predictor = SamPredictor(model)
        self.single_mask = single_mask

    def set_image(self, image: np.ndarray) -> None:
        """image: HxWx3 uint8 RGB."""
        self.predictor.set_image(image)

    def input_tensor(self, image: np.ndarray) -> np.ndarray:
        """The official encoder input of ``image``: [1, 3, 1024, 1024] float32."""
        return sam1_official_input(image)

    def features(self) -> dict[str, np.ndarray]:
        """{"image_embeddings": [1, 256, 64, 64]} of the image set last."""
        return {"image_embeddings": self.predictor.features.numpy()}

    def predict(
        self,
        point_coords=None,
        point_labels=None,
        box=None,
        mask_input=None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As ``SamPredictor.predict`` (lists accepted), and with [B, N, 2] / [B, 4] prompts:
        (masks [B, C, H, W], scores [B, C], low-res [B, C, 256, 256]) then."""
        coords = None if point_coords is None else np.asarray(point_coords, float)
        labels = None if point_labels is None else np.asarray(point_labels, float)
        box = None if box is None else np.asarray(box, float)
        mask = None if mask_input is None else np.asarray(mask_input, np.float32)
        batched = (coords is not None and coords.ndim == 3) or (box is not None and box.ndim == 2)
        if not batched:
            return self._predict(coords, labels, box, mask, multimask_output, return_logits)
        count = len(coords) if coords is not None else len(box)
        calls = [
            self._predict(
                None if coords is None else coords[i],
                None if labels is None else labels[i],
                None if box is None else box[i],
                None if mask is None else (mask[i] if mask.ndim == 4 else mask),
                multimask_output,
                return_logits,
            )
            for i in range(count)
        ]
        return tuple(np.stack(parts) for parts in zip(*calls))

    def _predict(self, coords, labels, box, mask, multimask_output: bool, return_logits: bool):
        """One prompt through SamPredictor.predict (the single-mask rule above if asked)."""
        if multimask_output or not self.single_mask:
            return self.predictor.predict(coords, labels, box, mask, multimask_output, return_logits)
        first = self.predictor.predict(coords, labels, box, mask, False, return_logits)  # token 0
        rest = self.predictor.predict(coords, labels, box, mask, True, return_logits)  # tokens 1..3
        masks, scores, low_res = (np.concatenate(parts) for parts in zip(first, rest))
        points = (0 if coords is None else len(coords)) + (1 if box is None else 2)
        reweight = np.array([1000, 0, 0, 0], np.float32)
        best = int(np.argmax(scores.astype(np.float32) + np.float32(points - C.SAM1_SINGLE_POINTS) * reweight))
        return masks[best : best + 1], scores[best : best + 1], low_res[best : best + 1]
