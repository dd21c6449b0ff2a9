"""SAM 1's SamPredictor preprocessing in numpy + PIL: the image, prompt coordinates and masks.

Each function follows segment_anything 1.0 formula for formula, so results equal the official
ones to float32 rounding:

- ``preprocess``: ``ResizeLongestSide.apply_image`` (torchvision ``to_pil_image`` + ``resize`` on a
  PIL image, i.e. PIL's bilinear resize of the uint8 image) -> float32 -> ``Sam.preprocess``
  ((x - mean) / std on 0..255 values, then zero padding at the bottom and right to 1024).
- ``transform_coords`` / ``transform_boxes``: ``apply_coords`` / ``apply_boxes`` (x * new W / W,
  y * new H / H in float64, then float32 as ``torch.as_tensor(dtype=torch.float)``).
- ``postprocess_masks``: ``Sam.postprocess_masks`` (bilinear to 1024, crop to the resized size,
  bilinear to the original size; the exported decoder does this in its graph).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..core import contract as C
from .transforms import upsample_masks

_MEAN = np.array(C.SAM1_PIXEL_MEAN, dtype=np.float32)
_STD = np.array(C.SAM1_PIXEL_STD, dtype=np.float32)


def preprocess_shape(orig_hw: tuple[int, int], long_side: int = C.IMAGE_SIZE) -> tuple[int, int]:
    """(H, W) -> the resized (h, w): ``ResizeLongestSide.get_preprocess_shape``, in Python floats."""
    h, w = orig_hw
    scale = long_side * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def resize_longest_side(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> hxwx3 uint8 with max(h, w) = 1024 (PIL bilinear, as torchvision does on PIL)."""
    h, w = preprocess_shape(image.shape[:2])
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def preprocess(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """HxWx3 uint8 RGB -> (``input_image`` [1, 3, 1024, 1024] float32, resized (h, w))."""
    resized = resize_longest_side(image)
    h, w = resized.shape[:2]
    x = np.zeros((C.IMAGE_SIZE, C.IMAGE_SIZE, 3), np.float32)  # padding comes after normalising: zeros
    x[:h, :w] = (resized.astype(np.float32) - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), (h, w)


def transform_coords(coords: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
    """[..., 2] pixel x, y of the original image -> the resized frame, float32."""
    h, w = orig_hw
    new_h, new_w = preprocess_shape(orig_hw)
    out = np.array(coords, dtype=np.float64)
    out[..., 0] = out[..., 0] * (new_w / w)
    out[..., 1] = out[..., 1] * (new_h / h)
    return out.astype(np.float32)


def transform_boxes(boxes: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
    """[..., 4] x0, y0, x1, y1 pixels -> the resized frame, float32 (each corner as a point)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return transform_coords(boxes.reshape(*boxes.shape[:-1], 2, 2), orig_hw).reshape(boxes.shape)


def postprocess_masks(low_res: np.ndarray, input_hw: tuple[int, int], orig_hw: tuple[int, int]) -> np.ndarray:
    """[..., 256, 256] float32 logits -> [..., H, W]: to 1024, crop to ``input_hw``, to ``orig_hw``."""
    full = upsample_masks(np.ascontiguousarray(low_res, np.float32), (C.IMAGE_SIZE, C.IMAGE_SIZE))
    cropped = np.ascontiguousarray(full[..., : input_hw[0], : input_hw[1]])
    return upsample_masks(cropped, orig_hw)
