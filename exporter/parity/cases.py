"""What parity is measured on: real photos and a matrix of prompt kinds.

Photos come from scikit-image's bundled data (offline), chosen for different sizes and aspect
ratios, one grayscale and one larger than 1024 px; ``load_image`` adds the user's own files.
Each prompt kind turns an image size into ``predict`` keyword arguments, in pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..runtime.inputs import as_rgb, read_image

# name -> skimage.data function; (H, W) in the comments
SAMPLES = {
    "chelsea": "chelsea",  # 300 x 451 cat
    "astronaut": "astronaut",  # 512 x 512 portrait
    "coffee": "coffee",  # 400 x 600 cup
    "camera": "camera",  # 512 x 512 grayscale, converted to RGB
    "rocket": "rocket",  # 427 x 640 launch
    "hubble": "hubble_deep_field",  # 872 x 1000
    "retina": "retina",  # 1411 x 1411, larger than the 1024 input
}


def sample_image(name: str) -> np.ndarray:
    import skimage.data

    return as_rgb(getattr(skimage.data, SAMPLES[name])())


def load_images(samples: list[str], paths: list[Path] = ()) -> dict[str, np.ndarray]:
    """``{name: HxWx3 uint8}`` for the named samples, then the user's files (by file name)."""
    unknown = sorted(set(samples) - set(SAMPLES))
    if unknown:
        raise InputError(f"unknown sample image(s) {', '.join(unknown)}; known: {', '.join(SAMPLES)}")
    images = {name: sample_image(name) for name in samples}
    images.update({Path(p).name: read_image(p) for p in paths})
    return images


def _px(h: int, w: int, fractions) -> np.ndarray:
    return np.asarray(fractions, float) * [w, h]


def _box(h: int, w: int, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.r_[_px(h, w, [x0, y0]), _px(h, w, [x1, y1])]


# kind -> (h, w) -> predict kwargs. "refine" additionally gets the reference's best logits.
KINDS = {
    "point": lambda h, w: dict(point_coords=_px(h, w, [[0.5, 0.45]]), point_labels=[1]),
    "point_single": lambda h, w: dict(point_coords=_px(h, w, [[0.5, 0.45]]), point_labels=[1], multimask_output=False),
    "fg_bg": lambda h, w: dict(point_coords=_px(h, w, [[0.45, 0.5], [0.1, 0.1]]), point_labels=[1, 0]),
    "box": lambda h, w: dict(box=_box(h, w, 0.2, 0.15, 0.8, 0.85)),
    "box_bg": lambda h, w: dict(
        box=_box(h, w, 0.2, 0.15, 0.8, 0.85), point_coords=_px(h, w, [[0.75, 0.2]]), point_labels=[0]
    ),
    "four_boxes": lambda h, w: dict(
        box=np.stack(
            [
                _box(h, w, 0.05, 0.05, 0.5, 0.5),
                _box(h, w, 0.5, 0.5, 0.95, 0.95),
                _box(h, w, 0.2, 0.1, 0.9, 0.6),
                _box(h, w, 0.0, 0.0, 1.0, 1.0),
            ]
        )
    ),
    "refine": lambda h, w: dict(point_coords=_px(h, w, [[0.5, 0.45], [0.3, 0.7]]), point_labels=[1, 1]),
    "border": lambda h, w: dict(point_coords=[[0.0, 0.0], [w - 1.0, h - 1.0], [w, h / 2]], point_labels=[1, 0, 1]),
    "padding": lambda h, w: dict(
        point_coords=_px(
            h,
            w,
            [
                [[0.5, 0.45], [0.1, 0.1], [0.7, 0.6]],
                [[0.3, 0.6], [0.0, 0.0], [0.0, 0.0]],
                [[0.6, 0.3], [0.9, 0.9], [0.0, 0.0]],
            ],
        ),
        point_labels=[[1, 0, 1], [1, -1, -1], [1, 0, -1]],
    ),
}


def padded(kwargs: dict, points: int) -> dict:
    """``predict`` keyword arguments with each prompt's points padded to ``points`` (a box counts
    two) with label -1 at (0, 0), after its own: what a static-shape decoder computes
    (runtime/profiles.py static_calls), asked of the official predictor."""
    box = None if kwargs.get("box") is None else np.asarray(kwargs["box"], float)
    coords = kwargs.get("point_coords")
    if coords is None:  # a box alone: [4] or [B, 4]
        shape = box.shape[:-1]
        coords, labels = np.zeros((*shape, 0, 2)), np.zeros((*shape, 0))
    else:
        coords, labels = np.asarray(coords, float), np.asarray(kwargs["point_labels"], float)
    pad = points - coords.shape[-2] - (0 if box is None else 2)
    if pad <= 0:
        return kwargs
    widths = [(0, 0)] * (coords.ndim - 2)
    return kwargs | {
        "point_coords": np.pad(coords, widths + [(0, pad), (0, 0)]),
        "point_labels": np.pad(labels, widths + [(0, pad)], constant_values=-1).astype(np.int64),
    }


def _parse_names(text: str, known, what: str) -> list[str]:
    """``"all"`` -> every known name in order, ``"none"`` -> [], else the comma-separated names,
    each of which must be known (InputError names the first unknown ones and the choices)."""
    text = text.strip()
    if text == "all":
        return list(known)
    if text == "none":
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}, 'all' or 'none'")
    return names


def parse_samples(text: str) -> list[str]:
    """The ``--samples`` list of ``sam2-onnx parity`` and the release job: sample photo names."""
    return _parse_names(text, SAMPLES, "sample image(s)")


def parse_kinds(text: str) -> list[str]:
    """The ``--kinds`` list of ``sam2-onnx parity`` and the release job: prompt kind names."""
    return _parse_names(text, KINDS, "prompt kind(s)")
