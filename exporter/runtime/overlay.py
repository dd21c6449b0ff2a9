"""Pictures of predictions: masks blended over the image, prompts drawn on top (pillow only)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# distinct, colour-blind-friendly colours (Okabe-Ito), one per prompt
PALETTE = [
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (0, 0, 0),
]
FG, BG, BOX = (40, 220, 60), (235, 50, 50), (255, 255, 255)


def colours(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct colours: the palette, then hues a golden angle apart (for many masks)."""
    if n <= len(PALETTE):
        return PALETTE[:n]
    out = []
    for i in range(n):
        hue = (i * 0.381966) % 1.0
        rgb = Image.new("HSV", (1, 1), (round(hue * 255), 200 if i % 2 else 255, 235)).convert("RGB")
        out.append(rgb.getpixel((0, 0)))
    return out


def overlay(
    image: np.ndarray,
    masks: list[np.ndarray],
    points=None,
    labels=None,
    boxes=None,
    alpha: float = 0.5,
    palette: list | None = None,
) -> Image.Image:
    """``image`` HxWx3 uint8 with each HxW mask (one per prompt) blended in its own colour
    (``palette``, default :func:`colours`), mask outlines, points (green foreground, red
    background) and boxes drawn."""
    palette = palette or colours(len(masks))
    out = image.astype(np.float32)
    edges = np.zeros(image.shape[:2], bool)
    for i, mask in enumerate(masks):
        m = mask > 0.5
        out[m] = (1 - alpha) * out[m] + alpha * np.float32(palette[i % len(palette)])
        edge = m.copy()  # a pixel of the mask with a neighbour outside it
        edge[1:-1, 1:-1] &= ~(m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:])
        edges |= edge
    out[edges] = 255.0
    picture = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    radius = max(4, round(min(image.shape[:2]) / 90))
    for x0, y0, x1, y1 in [] if boxes is None else np.asarray(boxes, float).reshape(-1, 4):
        draw.rectangle([x0, y0, x1, y1], outline=BOX, width=max(2, radius // 2))
    if points is not None:
        for (x, y), label in zip(np.asarray(points, float).reshape(-1, 2), np.asarray(labels).reshape(-1)):
            draw.ellipse(
                [x - radius, y - radius, x + radius, y + radius],
                fill=FG if label == 1 else BG,
                outline=(255, 255, 255),
                width=2,
            )
    return picture


def automask_overlay(image: np.ndarray, masks: list[np.ndarray], points=None, alpha: float = 0.45) -> Image.Image:
    """Every automatic mask in its own colour, largest first so small ones stay visible on
    top, with the point that produced each mask (as the official notebooks draw them)."""
    order = sorted(range(len(masks)), key=lambda i: -int(np.count_nonzero(masks[i])))
    pts = None if points is None else np.asarray(points, float).reshape(-1, 2)[order]
    return overlay(image, [masks[i] for i in order], pts, None if pts is None else np.ones(len(pts)), alpha=alpha)
