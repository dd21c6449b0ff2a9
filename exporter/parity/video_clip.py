"""A deterministic test clip from the bundled photos, with the prompts the video parity runs.

The camera pans and zooms over scikit-image's "coffee"; three objects cut from other photos move
over it: chelsea's head enters from the left and leaves on the right, the astronaut's face drifts
down across the frame, and a piece of the rocket photo slides out of the frame and back in, so
that the tracker's occlusion paths (object absent, then back) run. Every object's box is known
on every frame, so prompts are exact: a click on the cat, a box on the face, a mask of the rocket
piece, each on a different frame, and a correction click on the cat in the middle of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.staging import write_text_atomic

SIZE = (240, 320)  # (height, width): small files; the tracker resizes every frame to 1024 anyway
_PATCH = {"cat": (96, 84), "face": (70, 60), "rocket": (60, 44)}  # (height, width) of each object


@dataclass
class Clip:
    """frames: list of HxWx3 uint8; boxes: object name -> per frame (x0, y0, x1, y1) or None."""

    frames: list[np.ndarray]
    boxes: dict[str, list[tuple[int, int, int, int] | None]]
    prompts: list[dict] = field(default_factory=list)  # see :func:`prompts`

    def write_jpegs(self, folder: Path) -> Path:
        """The frames as ``00000.jpg`` ... (quality 95), the folder layout sam2 reads."""
        import io

        from PIL import Image

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(self.frames):
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=95)
            write_text_atomic(folder / f"{i:05d}.jpg", buf.getvalue())
        return folder


def _track(name: str, t: float, h: int, w: int) -> tuple[int, int]:
    """Top-left corner of object ``name`` at time t in [0, 1] (may lie outside the frame)."""
    ph, pw = _PATCH[name]
    if name == "cat":  # enters from the left, leaves on the right
        return int(h * 0.35), int(-pw + t * (w + 2 * pw))
    if name == "face":  # drifts down and right, in view throughout
        return int(10 + t * (h - ph - 20)), int(w * 0.55 + 30 * np.sin(4 * t))
    # the rocket piece: slides out on the right and comes back (out of view in the middle third)
    return int(h * 0.1), int(w - pw - 10 + (w * 0.45) * np.sin(np.pi * min(max((t - 0.25) * 2, 0), 1)))


def make_clip(frames: int = 40) -> Clip:
    """``frames`` frames of SIZE: the moving camera and the three objects."""
    import skimage.data
    from PIL import Image

    h, w = SIZE
    background = skimage.data.coffee()  # 400 x 600
    cutouts = {
        "cat": skimage.data.chelsea()[40:250, 100:330],
        "face": skimage.data.astronaut()[30:230, 150:320],
        "rocket": skimage.data.rocket()[100:300, 150:300],
    }
    patches = {k: np.asarray(Image.fromarray(v).resize(_PATCH[k][::-1], Image.BILINEAR)) for k, v in cutouts.items()}
    out, boxes = [], {k: [] for k in patches}
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 1.0 - 0.25 * t  # the camera zooms in while panning right and down
        cw, ch = int(560 * zoom), int(420 * zoom * 0.95)
        x, y = int(t * (600 - cw)), int(t * (400 - ch) * 0.6)
        frame = np.asarray(Image.fromarray(background[y : y + ch, x : x + cw]).resize((w, h), Image.BILINEAR)).copy()
        for name, patch in patches.items():
            top, left = _track(name, t, h, w)
            ph, pw = patch.shape[:2]
            y0, y1, x0, x1 = max(top, 0), min(top + ph, h), max(left, 0), min(left + pw, w)
            if y1 - y0 < 4 or x1 - x0 < 4:
                boxes[name].append(None)  # out of view
                continue
            frame[y0:y1, x0:x1] = patch[y0 - top : y1 - top, x0 - left : x1 - left]
            boxes[name].append((x0, y0, x1 - 1, y1 - 1))
        out.append(frame)
    clip = Clip(out, boxes)
    clip.prompts = prompts(clip)
    return clip


def _first_visible(boxes: list, start: int) -> int:
    return next(i for i in range(start, len(boxes)) if boxes[i] is not None)


def prompts(clip: Clip) -> list[dict]:
    """The parity run's prompts, in order: a click on the cat, a box on the face, the rocket
    piece's mask, each on its own frame, then a correction click on the cat mid-clip (a tracked
    frame: sam2 refines with the previous mask). Object ids 1, 2, 3."""
    n = len(clip.frames)
    h, w = SIZE

    def centre(box):
        return [[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]

    cat = _first_visible(clip.boxes["cat"], max(n // 10, 1))
    face = _first_visible(clip.boxes["face"], 0)
    rocket = _first_visible(clip.boxes["rocket"], 2)
    mask = np.zeros((h, w), bool)
    x0, y0, x1, y1 = clip.boxes["rocket"][rocket]
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    middle = _first_visible(clip.boxes["cat"], n // 2)
    return [
        {"kind": "point", "frame": cat, "obj_id": 1, "points": centre(clip.boxes["cat"][cat]), "labels": [1]},
        {"kind": "box", "frame": face, "obj_id": 2, "box": list(clip.boxes["face"][face])},
        {"kind": "mask", "frame": rocket, "obj_id": 3, "mask": mask},
        {
            "kind": "correction",
            "frame": middle,
            "obj_id": 1,
            "points": centre(clip.boxes["cat"][middle]),
            "labels": [1],
        },
    ]
