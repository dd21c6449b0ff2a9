"""``sam2-onnx track``: prompts from the command line, tracking, and the files it writes.

Prompts are ``F:OBJ:X,Y[:LABEL]`` (a click on frame F for object OBJ; label 1 foreground,
0 background) and ``F:OBJ:X0,Y0,X1,Y1`` (a box), in video pixels. The output folder holds
``masks/<obj>/<frame>.png`` (0 / 255, video size), ``track.json`` (per object and frame: area,
box) and ``overlay.gif``, a clip a person can watch; it is built in a staging folder and renamed
into place, so an existing folder is replaced only with ``force``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import InputError
from ..core.staging import staged
from .masks import mask_boxes
from .overlay import overlay
from .video_predictor import SAM2OnnxVideoPredictor

SUMMARY_FILE, OVERLAY_FILE, MASKS_DIR = "track.json", "overlay.gif", "masks"
GIF_MAX_SIDE = 480  # the overlay clip is scaled down to this (masks are written at full size)


@dataclass
class FramePrompt:
    """Everything given for one object on one frame: clicks and at most one box."""

    frame: int
    obj_id: int
    points: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    box: list | None = None


def _numbers(text: str, count: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(np.isfinite(values)):
        raise InputError(f"{what}: expected {count} comma-separated numbers, got {text!r}")
    return values


def parse_prompts(points: list[str], boxes: list[str]) -> list[FramePrompt]:
    """``--point`` and ``--box`` values -> one FramePrompt per (frame, object), in the order given."""
    found: dict[tuple[int, int], FramePrompt] = {}

    def slot(spec: str, what: str, parts: list[str]) -> FramePrompt:
        try:
            frame, obj = int(parts[0]), int(parts[1])
        except (ValueError, IndexError):
            raise InputError(f"{what} {spec!r}: expected FRAME:OBJ:..., frame and object as integers") from None
        if frame < 0:
            raise InputError(f"{what} {spec!r}: frame must be >= 0")
        return found.setdefault((frame, obj), FramePrompt(frame, obj))

    for spec in points:
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            raise InputError(f"--point {spec!r}: expected FRAME:OBJ:X,Y or FRAME:OBJ:X,Y:LABEL")
        p = slot(spec, "--point", parts)
        label = parts[3] if len(parts) == 4 else "1"
        if label not in ("0", "1"):
            raise InputError(f"--point {spec!r}: label must be 1 (foreground) or 0 (background), not {label!r}")
        p.points.append(_numbers(parts[2], 2, f"--point {spec!r}"))
        p.labels.append(int(label))
    for spec in boxes:
        parts = spec.split(":")
        if len(parts) != 3:
            raise InputError(f"--box {spec!r}: expected FRAME:OBJ:X0,Y0,X1,Y1")
        p = slot(spec, "--box", parts)
        if p.box is not None:
            raise InputError(f"--box {spec!r}: object {p.obj_id} already has a box on frame {p.frame}")
        x0, y0, x1, y1 = _numbers(parts[2], 4, f"--box {spec!r}")
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"--box {spec!r}: needs x0 < x1 and y0 < y1")
        p.box = [x0, y0, x1, y1]
    if not found:
        raise InputError("give at least one --point or --box")
    return list(found.values())


def track_to_files(
    predictor: SAM2OnnxVideoPredictor,
    video,
    prompts: list[FramePrompt],
    out: Path,
    *,
    reverse: bool = False,
    force: bool = False,
    progress=None,
    source: str = "",
) -> dict:
    """Track ``prompts`` through ``video`` (forward from the first prompted frame, or with
    ``reverse`` backward from the last one) and write ``out/``; returns the JSON summary.
    ``progress(total)`` -> a context manager with ``update(n)`` (e.g. tqdm), or None."""
    t0 = time.perf_counter()
    state = predictor.init_state(video)
    n = state.num_frames
    for p in prompts:
        if p.frame >= n:
            raise InputError(f"prompt on frame {p.frame}, but the video has {n} frames (0..{n - 1})")
    for p in prompts:
        predictor.add_new_points_or_box(
            state, p.frame, p.obj_id, points=p.points or None, labels=p.labels or None, box=p.box
        )
    start = max(p.frame for p in prompts) if reverse else min(p.frame for p in prompts)
    count = start + 1 if reverse else n - start
    out = Path(out)
    with staged(out, force) as staging:
        per_object: dict = {str(o): {} for o in state.obj_ids}
        gif = []
        scale = min(1.0, GIF_MAX_SIDE / max(state.video_height, state.video_width))
        bar = progress(count) if progress is not None else _NoBar()
        with bar:
            for frame_idx, obj_ids, logits in predictor.propagate_in_video(state, start, reverse=reverse):
                masks = logits[:, 0] > 0
                boxes = mask_boxes(masks)
                for obj, mask, box in zip(obj_ids, masks, boxes):
                    folder = staging / MASKS_DIR / str(obj)
                    folder.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{frame_idx:05d}.png")
                    area = int(mask.sum())
                    per_object[str(obj)][str(frame_idx)] = {
                        "area": area,
                        "box": [int(v) for v in box] if area else None,
                    }
                picture = overlay(state.frames.rgb(frame_idx), list(masks))
                if scale < 1.0:
                    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
                # an adaptive palette per frame: PIL's default web palette dithers photos badly
                gif.append((frame_idx, picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)))
                bar.update(1)
        gif.sort(key=lambda item: item[0])
        frames = [im for _, im in gif]
        frames[0].save(staging / OVERLAY_FILE, save_all=True, append_images=frames[1:], duration=80, loop=0)
        summary = {
            "video": source,
            "frames": n,
            "height": state.video_height,
            "width": state.video_width,
            "model": predictor.manifest["variant"]["name"],
            "weights": predictor.manifest["weights"]["source"],
            "direction": "reverse" if reverse else "forward",
            "start_frame": start,
            "tracked_frames": len(frames),
            "prompts": [
                {"frame": p.frame, "obj_id": p.obj_id, "points": p.points, "labels": p.labels, "box": p.box}
                for p in prompts
            ],
            "objects": per_object,
            "seconds": round(time.perf_counter() - t0, 2),
            "files": [MASKS_DIR + "/", OVERLAY_FILE, SUMMARY_FILE],
        }
        (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass
