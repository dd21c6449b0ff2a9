"""The video parity report: parity.video.json, and parity.video.html with the per-frame IoU curve
of every object in each tracking pass (a picture, pillow only) and the table behind it."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

from ..core.digests import sha256_file
from ..core.manifest import read_manifest, write_manifest
from ..core.staging import write_text_atomic
from ..runtime.overlay import PALETTE
from .video import VideoParityResult

JSON_NAME, HTML_NAME = "parity.video.json", "parity.video.html"
_W, _H, _PAD = 880, 260, 48


def iou_chart(result: VideoParityResult, step: str) -> Image.Image:
    """Per-frame IoU (at the reference's median logit) of each object in one step, y from the
    gate (or lower, if a frame falls below it) to 1."""
    rows = [r for r in result.rows if r["step"] == step]
    gate = result.gates["video_iou_min"]
    low = min([gate - (1 - gate) * 0.25] + [min(r["iou_median"], r["iou_zero"]) for r in rows])
    frames = sorted({r["frame"] for r in rows}) or [0]
    im = Image.new("RGB", (_W, _H), "white")
    d = ImageDraw.Draw(im)
    x0, x1, y0, y1 = _PAD + 20, _W - 20, 20, _H - _PAD

    def xy(frame, value):
        span = max(frames[-1] - frames[0], 1)
        return x0 + (frame - frames[0]) / span * (x1 - x0), y1 - (value - low) / (1 - low) * (y1 - y0)

    d.rectangle([x0, y0, x1, y1], outline="#999")
    for value, colour in ((1.0, "#999"), (gate, "#d55e00")):
        y = xy(frames[0], value)[1]
        d.line([x0, y, x1, y], fill=colour)
        d.text((4, y - 6), f"{value:.4f}", fill=colour)
    d.text((x1 - 110, xy(frames[0], gate)[1] + 2), "gate", fill="#d55e00")
    for i, obj in enumerate(sorted({r["obj_id"] for r in rows}, key=str)):
        pts = [xy(r["frame"], min(r["iou_median"], r["iou_zero"])) for r in rows if r["obj_id"] == obj]
        colour = PALETTE[i % len(PALETTE)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for x, y in pts:
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        d.text((x0 + 8 + 90 * i, y1 + 22), f"object {obj}", fill=colour)
    for f in frames[:: max(len(frames) // 10, 1)]:
        d.text((xy(f, low)[0] - 4, y1 + 4), str(f), fill="#333")
    d.text((x1 - 40, y1 + 22), "frame", fill="#333")
    return im


def _png(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def as_html(result: VideoParityResult) -> str:
    data = result.as_dict()
    worst = data["worst"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>sam2-onnx video parity</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:auto}td,th{padding:2px 8px;text-align:right}"
        ".fail{color:#b00}</style>",
        f"<h1>Video parity: {html.escape(result.variant)} — {'PASS' if result.passed else 'FAIL'}</h1>",
        f"<p>Ours (SAM2OnnxVideoPredictor, onnxruntime) vs the official SAM2VideoPredictor on a {result.frames}-frame "
        "clip built from the bundled photos; weights: "
        f"{html.escape(str(data['weights']['source']))} (seed {data['weights']['seed']}). Random weights give logits "
        "near zero, so masks are compared at each frame's median reference logit as well as at 0.</p>",
        "<p>Worst: IoU {video_iou_min:.6f} (gate {g[video_iou_min]}), object score |diff| {video_object_score_abs:.2e} "
        "(gate {g[video_object_score_abs]}), object pointer rel L2 {video_obj_ptr_rel_l2:.2e} (gate "
        "{g[video_obj_ptr_rel_l2]}), logits max |diff| {logits_max_abs:.2e}.</p>".format(**worst, g=data["gates"]),
    ]
    parts += [f"<p class='fail'>{html.escape(f)}</p>" for f in data["failures"]]
    parts += [f"<p><i>{html.escape(n)}</i></p>" for n in data["notes"]]
    parts.append("<h2>Steps</h2><table><tr><th>step</th><th>frames</th><th>official s</th><th>ours s</th></tr>")
    parts += [
        f"<tr><td style='text-align:left'>{html.escape(s['step'])}</td><td>{s['frames']}</td>"
        f"<td>{s['reference_s']:.1f}</td><td>{s['ours_s']:.1f}</td></tr>"
        for s in data["steps"]
    ]
    parts.append("</table>")
    for step in [s["step"] for s in data["steps"] if s["frames"] > 1]:
        parts.append(f"<h2>Per-frame IoU: {html.escape(step)}</h2>")
        parts.append(f"<img alt='IoU per frame' src='data:image/png;base64,{_png(iou_chart(result, step))}'>")
    parts.append(
        "<h2>Every object and frame</h2><table><tr><th>step</th><th>frame</th><th>object</th><th>IoU@median</th>"
        "<th>IoU@0</th><th>logits |diff|</th><th>score</th><th>score |diff|</th><th>pointer rel L2</th></tr>"
    )
    for r in data["rows"]:
        parts.append(
            f"<tr><td style='text-align:left'>{html.escape(r['step'])}</td><td>{r['frame']}</td><td>{r['obj_id']}</td>"
            f"<td>{r['iou_median']:.6f}</td><td>{r['iou_zero']:.6f}</td><td>{r['logits_max_abs']:.1e}</td>"
            f"<td>{r.get('object_score', float('nan')):.4f}</td><td>{r['object_score_abs']:.1e}</td>"
            f"<td>{r.get('obj_ptr_rel_l2', float('nan')):.1e}</td></tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def write_video_report(result: VideoParityResult, report_dir: Path) -> tuple[Path, Path]:
    """parity.video.json and parity.video.html into ``report_dir`` (atomically each)."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = report_dir / JSON_NAME, report_dir / HTML_NAME
    write_text_atomic(json_path, json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    write_text_atomic(html_path, as_html(result))
    return json_path, html_path


def record_video_parity(model_dir: Path, result: VideoParityResult, json_path: Path) -> None:
    """The verdict and the report's digest in the manifest, under ``parity_video``."""
    manifest = read_manifest(model_dir)
    manifest["parity_video"] = {
        "verdict": "pass" if result.passed else "fail",
        "frames": result.frames,
        "worst": result.worst,
        "report": json_path.name if json_path.parent == Path(model_dir) else str(json_path),
        "report_sha256": sha256_file(json_path),
    }
    write_manifest(model_dir, manifest)
