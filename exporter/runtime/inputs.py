"""Validate images and prompts, and assemble the decoder's prompt tensors as SAM 2 does.

Shapes follow ``SAM2ImagePredictor.predict``: points [N, 2] or [B, N, 2] with labels [N] or
[B, N]; boxes [4] or [B, 4]; mask_input [1, 256, 256] or [B, 1, 256, 256]. Labels are 1
(foreground) or 0 (background); in a [B, N, 2] batch, prompts with fewer points are padded
with label -1, as the official predictor accepts. Boxes become two corner points labelled 2
and 3, placed before the clicks of the same prompt. Every problem is an InputError naming the
argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import contract as C
from ..core.errors import InputError, one_line
from .transforms import transform_coords


def read_image(path) -> np.ndarray:
    """An image file -> HxWx3 uint8 RGB (grayscale, palette and RGBA converted)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return as_rgb(im)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"{path}: not a readable image ({one_line(exc)})") from None
    except Exception as exc:  # decoders raise ValueError, DecompressionBombError, ... on bad files too
        raise InputError(f"{path}: the image decoder failed ({one_line(exc)})") from None


def as_rgb(image) -> np.ndarray:
    """PIL image or uint8 array (HxW, HxWx1, HxWx3, HxWx4) -> HxWx3 uint8 RGB.

    Grayscale is repeated over three channels and RGBA loses its alpha (as PIL's
    ``convert("RGB")``); other dtypes and shapes are refused.
    """
    if hasattr(image, "convert") and hasattr(image, "size") and not isinstance(image, np.ndarray):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array or a PIL image, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(
            f"image must be uint8 (0..255 RGB), not {image.dtype}; "
            "scale and convert it first, e.g. (x * 255).astype(np.uint8)"
        )
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        rgb = image[..., :3] if image.shape[2] != 1 else np.repeat(image, 3, axis=2)
    elif image.ndim == 2:
        rgb = np.repeat(image[..., None], 3, axis=2)
    else:
        raise InputError(f"image must be HxW, HxWx1, HxWx3 (RGB) or HxWx4 (RGBA), not shape {image.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    return np.ascontiguousarray(rgb)


@dataclass
class Prompts:
    """Decoder prompt inputs for L prompts, plus whether the caller gave a single prompt."""

    point_coords: np.ndarray  # [L, N, 2] float32, 1024 frame
    point_labels: np.ndarray  # [L, N] float32
    mask_input: np.ndarray  # [L, 1, 256, 256] float32
    has_mask_input: np.ndarray  # [L] float32

    def feeds(self) -> dict[str, np.ndarray]:
        return {
            "point_coords": self.point_coords,
            "point_labels": self.point_labels,
            "mask_input": self.mask_input,
            "has_mask_input": self.has_mask_input,
        }


def _array(x, name: str, ndims: tuple[int, ...], last: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric, got {type(x).__name__}") from None
    if a.ndim not in ndims or (last is not None and a.shape[-1] != last):
        want = " or ".join(f"{n}-D" for n in ndims)
        raise InputError(
            f"{name} must be {want}" + (f" with last dim {last}" if last else "") + f", not shape {a.shape}"
        )
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return a


def prepare_prompts(
    point_coords, point_labels, box, mask_input, orig_hw: tuple[int, int], normalize_coords: bool = True
) -> Prompts:
    """Validate one image's prompts and turn them into decoder inputs."""
    coords = labels = boxes = None
    if (point_coords is None) != (point_labels is None):
        raise InputError("point_coords and point_labels must be given together")
    if point_coords is not None:
        coords = _array(point_coords, "point_coords", (2, 3), last=2)
        labels = _array(point_labels, "point_labels", (1, 2))
        batched = coords.ndim == 3
        if coords.ndim == 2:
            coords, labels = coords[None], labels[None] if labels.ndim == 1 else labels
        if labels.shape != coords.shape[:2]:
            raise InputError(
                f"point_coords has {coords.shape[1]} point(s) per prompt "
                f"(shape {coords.shape}) but point_labels has shape {labels.shape}"
            )
        allowed = {float(C.LABEL_BG), float(C.LABEL_FG)} | ({float(C.LABEL_PAD)} if batched else set())
        bad = sorted(set(np.unique(labels).tolist()) - allowed)
        if bad:
            raise InputError(
                f"point_labels must be 1 (foreground) or 0 (background), or -1 to pad "
                f"[B, N, 2] prompts with fewer points; got {bad}; give boxes with box="
            )
        coords = transform_coords(coords, orig_hw, normalize_coords)
    if box is not None:
        boxes = _array(box, "box", (1, 2), last=4).reshape(-1, 4)
        if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise InputError(f"box must be x0, y0, x1, y1 with x1 >= x0 and y1 >= y0, got {boxes.tolist()}")
        corners = transform_coords(boxes.reshape(-1, 2, 2), orig_hw, normalize_coords)
        corner_labels = np.tile(np.float32([C.LABEL_BOX_TL, C.LABEL_BOX_BR]), (len(boxes), 1))
        if coords is None:
            coords, labels = corners, corner_labels
        elif len(corners) != len(coords):
            raise InputError(
                f"{len(corners)} box(es) but {len(coords)} point prompt(s): with several "
                "boxes give point_coords as [B, N, 2], one row of points per box"
            )
        else:
            coords = np.concatenate([corners, coords], axis=1)
            labels = np.concatenate([corner_labels, labels], axis=1)
    if coords is None or coords.shape[1] == 0:
        raise InputError("empty prompt: give point_coords/point_labels or a box")
    if (labels == C.LABEL_PAD).all(axis=1).any():
        raise InputError("a prompt has only padding points (-1): give it at least one real point")
    n = len(coords)
    if mask_input is None:
        masks, has = np.zeros((n, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE), np.float32), np.zeros(n, np.float32)
    else:
        masks = _array(mask_input, "mask_input", (3, 4))
        masks = masks[None] if masks.ndim == 3 else masks
        if masks.shape[1:] != (1, C.LOW_RES_SIZE, C.LOW_RES_SIZE) or masks.shape[0] not in (1, n):
            raise InputError(
                f"mask_input must be [1, 256, 256] or [{n}, 1, 256, 256] "
                f"(low-res logits from a previous predict), not shape {np.shape(mask_input)}"
            )
        masks = np.broadcast_to(masks, (n, 1, C.LOW_RES_SIZE, C.LOW_RES_SIZE)).astype(np.float32)
        has = np.ones(n, np.float32)
    return Prompts(np.ascontiguousarray(coords, dtype=np.float32), labels.astype(np.float32), masks, has)
