"""``bench.png``: one horizontal bar per engine for encoder latency, decoder latency and peak
memory, with min-max whiskers on the latencies and, for a bench of several rounds, a dot at
each round's median (pillow only, no plotting library)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from ..core.cpu import short as cpu_short
from ..core.manifest import random_seed
from ..runtime.overlay import PALETTE

# torch in vermillion, onnxruntime precisions in blues and green (Okabe-Ito, as the overlays)
ENGINE_COLOURS = {
    "torch:fp32": PALETTE[5],
    "onnxruntime:fp32": PALETTE[0],
    "onnxruntime:fp16": PALETTE[4],
    "onnxruntime:int8": PALETTE[2],
}

W, ROW, LABEL_W, PAD = 900, 26, 190, 14


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pillow without FreeType
        return ImageFont.load_default()


def _panel(
    draw: ImageDraw.ImageDraw,
    top: int,
    title: str,
    rows: list[tuple[str, float, float, float, str, list]],
    colours: list,
) -> int:
    """Draw one panel (title, then a bar per row: label, value, whisker lo, hi, text, dots);
    returns its bottom."""
    font, bold = _font(13), _font(15)
    draw.text((PAD, top), title, fill=(20, 20, 20), font=bold)
    top += 24
    x0, width = LABEL_W, W - LABEL_W - 140
    scale = width / max(max(r[3] for r in rows), 1e-9)
    for i, ((label, value, lo, hi, text, dots), colour) in enumerate(zip(rows, colours)):
        y = top + i * ROW
        draw.text((PAD, y + 5), label, fill=(40, 40, 40), font=font)
        draw.rectangle([x0, y + 4, x0 + max(1, value * scale), y + ROW - 4], fill=colour)
        if hi > lo:  # min-max whisker
            mid = y + ROW // 2
            draw.line([x0 + lo * scale, mid, x0 + hi * scale, mid], fill=(30, 30, 30), width=2)
            for x in (lo, hi):
                draw.line([x0 + x * scale, mid - 5, x0 + x * scale, mid + 5], fill=(30, 30, 30), width=2)
        for x in dots if len(dots) > 1 else ():  # each round's median
            cx, cy = x0 + x * scale, y + ROW // 2 - 7
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=(255, 255, 255), outline=(30, 30, 30))
        draw.text((x0 + max(value, hi) * scale + 8, y + 5), text, fill=(20, 20, 20), font=font)
    return top + len(rows) * ROW + PAD


def weights_label(weights: dict) -> str:
    seed = random_seed(weights)
    return f"random (seed {seed})" if seed is not None else f"checkpoint {weights.get('checkpoint_file')}"


def chart(bench: dict) -> bytes:
    """PNG bytes of the three panels for a ``bench.json`` dict."""
    results = bench["results"]
    labels = ["torch eager fp32" if r["engine"] == "torch" else f"onnxruntime {r['precision']}" for r in results]
    colours = [ENGINE_COLOURS.get(r["engine"] + ":" + r["precision"], (120, 120, 120)) for r in results]

    def latency(graph: str):
        out = []
        for label, r in zip(labels, results):
            t, ratio = r[graph], (r.get("vs_torch") or {}).get(graph)
            text = f"{t['median_ms']:.1f} ms" + (f"  ({ratio:.2f}x torch)" if ratio and r["engine"] != "torch" else "")
            out.append((label, t["median_ms"], t["min_ms"], t["max_ms"], text, t.get("round_medians_ms", [])))
        return out

    memory = [
        (
            label,
            r["peak_rss_mb"] / 1024,
            r["peak_rss_mb"] / 1024,
            r["peak_rss_mb"] / 1024,
            f"{r['peak_rss_mb'] / 1024:.2f} GB"
            + (f", files {sum(r['bytes'].values()) / 1e6:.0f} MB" if r["bytes"] else ""),
            [],
        )
        for label, r in zip(labels, results)
    ]
    what = "median (whiskers: min-max" + (
        f"; dots: each of {bench['rounds']} rounds' median)" if bench.get("rounds", 1) > 1 else ")"
    )
    panels = [
        (f"encoder latency, {what}", latency("encoder")),
        (f"decoder latency, {what}", latency("decoder")),
        ("peak RSS of the process (load + runs)", memory),
    ]
    height = 60 + sum(24 + len(rows) * ROW + PAD for _, rows in panels) + 30
    img = Image.new("RGB", (W, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    m = bench["machine"]
    draw.text((PAD, PAD), f"sam2-onnx bench: {bench['variant']}", fill=(0, 0, 0), font=_font(18))
    draw.text(
        (PAD, PAD + 24),
        f"{cpu_short(m)}, {bench['threads']} threads, {m['date']}; weights: {weights_label(bench['weights'])}",
        fill=(90, 90, 90),
        font=_font(12),
    )
    top = 60
    for title, rows in panels:
        top = _panel(draw, top, title, rows, colours)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
