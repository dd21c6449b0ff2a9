"""Parity reports next to the artifacts: ``parity.json`` (every metric) and ``parity.html``
(summary table, then reference / ONNX / XOR pictures per case), plus the verdict in the manifest."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.cpu import short as cpu_short
from ..core.digests import sha256_file
from ..core.manifest import package_versions, random_seed, read_manifest, write_manifest
from ..core.staging import write_text_atomic
from ..runtime.overlay import automask_overlay
from .automask import LADDER as AUTOMASK_LADDER
from .automask import SETTINGS as AUTOMASK_SETTINGS
from .automask import masks_of
from .cases import SAMPLES, sample_image
from .engine import ParityResult

THUMB = 180  # px, longest side of each picture in the HTML report
SQNR_ROWS = 15  # worst layers listed per graph in the HTML report (parity.json has them all)
RANDOM_NOTE = (
    "random weights make these numbers a test of the conversion, not of model quality; for FP16 "
    "and INT8 they are a lower bound: random-weight mask logits sit within about 0.2 of the "
    "threshold, so small numeric errors flip more pixels than with trained weights"
)


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def as_json(result: ParityResult) -> dict:
    return _json_safe(
        {
            "schema": "sam2-onnx/parity",
            "schema_version": 1,
            "variant": result.variant,
            "precision": result.precision,
            "verdict": "pass" if result.passed else "fail",
            "weights": result.weights,
            "machine": result.machine,
            "runtime": result.runtime,
            "reference": result.reference,
            "weights_note": RANDOM_NOTE if random_seed(result.weights) is not None else None,
            "versions": package_versions("sam2-onnx-exporter", "sam2", "torch", "onnx", "onnxruntime"),
            "gates": result.gates,
            "images": {k: list(v) for k, v in result.images.items()},
            "seconds": round(result.seconds, 1),
            "failures": result.failures(),
            "summary": result.summary(),
            "sqnr": result.sqnr,
            "automask_ladder": AUTOMASK_LADDER if result.automask_cases else None,
            "automask_settings": {
                c.kind.split(":", 1)[1]: AUTOMASK_SETTINGS[c.kind.split(":", 1)[1]] for c in result.automask_cases
            }
            or None,
            "cases": [
                {
                    "image": c.image,
                    "kind": c.kind,
                    "passed": c.passed,
                    "metrics": c.metrics,
                    "failures": c.failures,
                    "seconds": {k: round(v, 4) for k, v in c.seconds.items()},
                }
                for c in result.cases
            ],
        }
    )


def _png(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _pictures(image: np.ndarray, ref: np.ndarray, ours: np.ndarray) -> list[str]:
    """Reference mask (blue), ONNX mask (orange), and their XOR (red) over a small grey image."""
    h, w = ref.shape
    scale = min(1.0, THUMB / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    base = np.asarray(Image.fromarray(image).convert("L").convert("RGB").resize(size)).astype(np.float32) * 0.6

    def paint(mask: np.ndarray, colour) -> str:
        m = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0
        out = base.copy()
        out[m] = 0.4 * out[m] + 0.6 * np.float32(colour)
        return _png(out.clip(0, 255).astype(np.uint8))

    a, b = ref > 0, ours > 0
    return [paint(a, (0, 114, 178)), paint(b, (230, 159, 0)), paint(a ^ b, (255, 0, 0))]


def as_html(result: ParityResult, images: dict[str, np.ndarray]) -> str:
    esc = html.escape
    verdict = "PASS" if result.passed else "FAIL"
    rows = []
    for c in result.cases:
        m = c.metrics
        cells = [
            c.image,
            c.kind,
            "pass" if c.passed else "FAIL",
            f"{m['mask_iou_min']:.6f} ({m['mask_iou_min_all']:.6f})" if "mask_iou_min" in m else "",
            f"{m['logits_max_abs']:.2e}" if "logits_max_abs" in m else "",
            f"{m['score_abs']:.2e}" if "score_abs" in m else "",
            str(m.get("flips_outside_band", "")),
            f"{m['encoder_rel_l2']:.2e}" if "encoder_rel_l2" in m else "",
            f"{m['preprocess_max_abs']:.2e}" if "preprocess_max_abs" in m else "",
            "; ".join(c.failures),
        ]
        rows.append(f"<tr class='{'ok' if c.passed else 'bad'}'>{''.join(f'<td>{esc(x)}</td>' for x in cells)}</tr>")
    pictures = []
    for c in result.cases:
        if c.masks is None or c.image not in images:
            continue
        ref_png, our_png, xor_png = _pictures(images[c.image], *c.masks)
        flips = c.metrics.get("flipped_pixels", 0)
        pictures.append(
            f"<figure><figcaption>{esc(c.image)} / {esc(c.kind)}: IoU {c.metrics['mask_iou_min']:.6f}, "
            f"{flips} flipped px</figcaption><img src='{ref_png}' title='reference'>"
            f"<img src='{our_png}' title='ONNX'><img src='{xor_png}' title='XOR'></figure>"
        )
    note = f"<p><b>Random weights</b>: {esc(RANDOM_NOTE)}.</p>" if random_seed(result.weights) is not None else ""
    summary = _summary_html(result.summary())
    sqnr = "".join(_sqnr_html(role, rows) for role, rows in result.sqnr.items())
    automask = _automask_html(result, images)
    runtime = _runtime_text(result.runtime)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>parity {esc(result.variant)} {result.precision}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px}} tr.bad{{background:#fdd}} figure{{display:inline-block;margin:8px}}
figcaption{{font-size:12px}} img{{margin-right:4px;border:1px solid #999}} .verdict{{font-size:1.4em}}</style></head><body>
<h1>Parity: {esc(result.variant)} ({result.precision}) vs official {esc(result.reference)}</h1>
<p>Ours: {esc(runtime)}.</p>
<p class="verdict">Verdict: <b>{verdict}</b> &mdash; {len(result.cases)} cases, {len(result.failures())} failures,
{len(result.images)} images, {result.seconds:.0f} s, on {esc(cpu_short(result.machine)) if result.machine else "an unrecorded CPU"}
(its u8 x s8 kernel: {esc(result.machine.get("int8_kernel", "?"))}).</p>{note}
{summary}
<p>Gates: {esc(json.dumps(result.gates))}</p>{sqnr}
<p>Mask IoU is over the pixels the reference decides (|logit| >= {result.gates.get("iou_band", 0):g}); in brackets, over
every pixel, which random-weight masks make fragile: their logits sit near 0 over whole regions.</p>
<table><tr><th>image</th><th>case</th><th>verdict</th><th>mask IoU min (all pixels)</th><th>logits max abs</th><th>score abs</th>
<th>flips outside band</th><th>encoder rel L2</th><th>preprocess max abs</th><th>failures</th></tr>
{"".join(rows)}</table>
{automask}
<h2>Best mask per case: reference (blue), ONNX (orange), XOR (red)</h2>
{"".join(pictures)}
</body></html>
"""


def _runtime_text(runtime: dict) -> str:
    """Which runtime was "ours", in words."""
    if runtime.get("name") != "web":
        return f"the Python runtime ({runtime.get('class', 'SAM2OnnxPredictor')}, onnxruntime)"
    gpu = f" ({runtime['adapter']})" if runtime.get("adapter") else ""
    return (
        f"the browser page in headless {runtime.get('browser', 'Chromium')}, onnxruntime-web {runtime.get('ort', '?')}: "
        f"encoder on {runtime.get('encoder')}{gpu}, decoder on {runtime.get('decoder')}, {runtime.get('threads')} thread(s)"
    )


def report_names(precision: str, runtime: str = "python") -> tuple[str, str]:
    """``parity[.web][.PRECISION].json`` / ``.html`` (no precision suffix for fp32)."""
    stem = "parity" + (f".{runtime}" if runtime != "python" else "") + ("" if precision == "fp32" else f".{precision}")
    return f"{stem}.json", f"{stem}.html"


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _summary_html(s: dict) -> str:
    cells = [
        s["precision"],
        s["verdict"].upper(),
        " + ".join(f"{s['files'][r]} {s['bytes'][r] / 1e6:.1f} MB" for r in s["files"]),
        _fmt(s["iou_min"], ".6f"),
        _fmt(s["iou_median"], ".6f"),
        _fmt(s["logits_max_abs"], ".2e"),
        _fmt(s["encoder_ms_median"], ".0f"),
    ]
    return (
        "<table><tr><th>precision</th><th>verdict</th><th>files</th><th>IoU min</th><th>IoU median</th>"
        "<th>logits max abs</th><th>encoder ms (median, this CPU)</th></tr><tr>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        + "</tr></table>"
    )


def _thumb(picture: Image.Image) -> str:
    scale = min(1.0, 2 * THUMB / max(picture.size))
    return _png(
        np.asarray(picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))))
    )


def _automask_html(result: ParityResult, images: dict[str, np.ndarray]) -> str:
    """Automatic mask generation: a row per (photo, setting), then both generators' masks."""
    cases = result.automask_cases
    if not cases:
        return ""
    esc = html.escape
    rows, figures = [], []
    for c in cases:
        m, setting = c.metrics, c.kind.split(":", 1)[1]
        speed = c.seconds["reference"] / c.seconds["ours"] if c.seconds["ours"] else float("nan")
        tries = ", ".join(f"{t['masks']}" + (f" ({t['error']})" if t["error"] else "") for t in m["automask_tries"])
        lowered = json.dumps(m["automask_tries"][-1]["lowered"]) if m["automask_step"] else "as declared"
        cells = [
            c.image,
            setting,
            "pass" if c.passed else "FAIL",
            f"{m['masks_ours']} / {m['masks_reference']}",
            f"step {m['automask_step']}: {lowered}; official kept {tries}",
            f"{m['automask_iou_min']:.6f}",
            str(m["automask_box_mismatches"]),
            f"{m['automask_area_rel_max']:.1e}",
            f"{m['automask_score_abs']:.1e}",
            f"{c.seconds['reference']:.1f} / {c.seconds['ours']:.1f} ({speed:.1f}x)",
            "; ".join(c.failures),
        ]
        rows.append(f"<tr class='{'ok' if c.passed else 'bad'}'>{''.join(f'<td>{esc(x)}</td>' for x in cells)}</tr>")
        if c.records is not None and c.image in images:
            pics = [
                _thumb(automask_overlay(images[c.image], masks_of(recs), [r["point_coords"][0] for r in recs]))
                for recs in c.records
            ]
            figures.append(
                f"<figure><figcaption>{esc(c.image)} / {esc(setting)}: official (left), ONNX (right)"
                f"</figcaption><img src='{pics[0]}'><img src='{pics[1]}'></figure>"
            )
    settings = "; ".join(
        f"{k}: {json.dumps(AUTOMASK_SETTINGS[k])}" for k in sorted({c.kind.split(":", 1)[1] for c in cases})
    )
    return (
        "<h2>Automatic mask generation vs official SAM2AutomaticMaskGenerator</h2>"
        f"<p>Settings (thresholds lowered for random weights): {esc(settings)}</p>"
        f"<p>Each case walks the ladder {esc(json.dumps(AUTOMASK_LADDER))} until the official generator keeps "
        f"at least {result.gates.get('automask_min_masks')} masks; both generators run at that step.</p>"
        "<table><tr><th>image</th><th>setting</th><th>verdict</th><th>masks ours / official</th><th>filters</th>"
        "<th>matched IoU min</th><th>box mismatches</th><th>area rel max</th><th>score abs max</th>"
        "<th>seconds official / ours</th><th>failures</th></tr>" + "".join(rows) + "</table>" + "".join(figures)
    )


def _sqnr_html(role: str, rows: list[dict]) -> str:
    """The layers that lose the most, worst first (SQNR is cumulative: look for the first drop)."""
    worst = sorted(rows, key=lambda r: r["sqnr_db"])[:SQNR_ROWS]
    body = "".join(
        f"<tr><td>{html.escape(r['node'])}</td><td>{r['op']}</td><td>{r['sqnr_db']:.1f}</td>"
        f"<td>{r['rel_l2']:.2e}</td></tr>"
        for r in worst
    )
    return (
        f"<h2>INT8 {role}: per-layer SQNR vs FP32 ({len(rows)} layers, worst {len(worst)} shown)</h2>"
        "<p>10 log10(signal / error power) of each layer's output on the first photo; higher is better, "
        "~6 dB per bit. Errors accumulate along the graph.</p>"
        f"<table><tr><th>node</th><th>op</th><th>SQNR dB</th><th>rel L2</th></tr>{body}</table>"
    )


def write_report(
    result: ParityResult, report_dir: Path, images: dict[str, np.ndarray] | None = None
) -> tuple[Path, Path]:
    """Write parity.json and parity.html into ``report_dir`` (atomically each)."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = {name: sample_image(name) for name in result.images if name in SAMPLES}
    json_name, html_name = report_names(result.precision, result.runtime["name"])
    json_path, html_path = report_dir / json_name, report_dir / html_name
    write_text_atomic(json_path, json.dumps(as_json(result), indent=2) + "\n")
    write_text_atomic(html_path, as_html(result, images))
    return json_path, html_path


def record_in_manifest(model_dir: Path, result: ParityResult, json_path: Path) -> None:
    """Store the verdict and the report's digest in the artifacts' manifest: under ``parity``
    for the Python runtime (what ``release`` requires), ``parity_web`` for the browser."""
    manifest = read_manifest(model_dir)
    key = "parity" if result.runtime["name"] == "python" else f"parity_{result.runtime['name']}"
    manifest.setdefault(key, {})[result.precision] = {
        "verdict": "pass" if result.passed else "fail",
        "cases": len(result.cases),
        "failures": len(result.failures()),
        "images": sorted(result.images),
        "report": json_path.name if json_path.parent == Path(model_dir) else str(json_path),
        "report_sha256": sha256_file(json_path),
    }
    write_manifest(model_dir, manifest)


def save_report(result: ParityResult, report_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the report (default: next to the artifacts) and record the verdict in the manifest."""
    json_path, html_path = write_report(result, report_dir or result.model_dir)
    record_in_manifest(result.model_dir, result, json_path)
    return json_path, html_path
