"""Benchmark: the browser page (onnxruntime-web in headless Chromium) against the Python runtime
on the same machine, one run.

``tiny`` FP32 (seeded random weights; speed does not depend on their values), the 1800x1200
benchmark photo, one foreground click. For each browser backend, wasm with one thread, wasm
with every core, and WebGPU when Chromium has an adapter (here: its SwiftShader software
adapter, a CPU emulating a GPU, which says nothing about a real GPU), the page times itself
(``sam2app.bench``: ``performance.now``): the encoder with preprocessing, the decoder run, and
click-to-mask (decoder, then the best mask upsampled to 1800x1200 and thresholded, as a click
shows it). The Python runtime does the same steps with the same thread counts
(``decode_logits``, then ``upsample_masks`` of the best mask). Page load to first mask: from
the browser's start to the first mask of a click, split into its steps.

    python scripts/bench_web.py [--runs 20] [--encoder-runs 3] [--no-webgpu] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from exporter.bench.tables import bench_photo, describe, machine, publish, timed
from exporter.core.checkout import ROOT
from exporter.core.variants import resolve
from exporter.export.current import ensure_export
from exporter.runtime import SAM2OnnxPredictor
from exporter.runtime.transforms import upsample_masks
from exporter.web.predictor import BrowserPredictor

CLICK = (900.0, 600.0)  # on the 1800x1200 photo


def _stats(ms: list[float]) -> dict:
    return {"median_ms": float(np.median(ms)), "min_ms": float(min(ms)), "max_ms": float(max(ms)), "runs": len(ms)}


def browser_row(folder: Path, image: np.ndarray, ep: str, threads: int | None, runs: int, encoder_runs: int) -> dict:
    """One backend: page load to first mask, then the page's own timings."""
    t0 = time.perf_counter()
    with BrowserPredictor(folder, ep=ep, threads=threads) as page:
        t1 = time.perf_counter()
        page.embed(image)
        t2 = time.perf_counter()
        page.page.evaluate(f"sam2app.addPoint({CLICK[0]}, {CLICK[1]}, 1)")
        t3 = time.perf_counter()
        print(
            f"[bench] browser {ep}, {page.backend['threads']} thread(s): encoder x{encoder_runs}, clicks x{runs}",
            flush=True,
        )
        timings = page.page.evaluate(
            "a => sam2app.bench(a)", {"encoderRuns": encoder_runs, "clickRuns": runs, "x": CLICK[0], "y": CLICK[1]}
        )
        backend = page.backend
    return {
        "backend": backend,
        "first_mask_s": {"browser_and_model": t1 - t0, "open_and_encode": t2 - t1, "click": t3 - t2, "total": t3 - t0},
        **{key: _stats(values) for key, values in timings.items()},
    }


def python_row(folder: Path, image: np.ndarray, threads: int, runs: int, encoder_runs: int) -> dict:
    ours = SAM2OnnxPredictor(folder, threads=threads)
    point = dict(point_coords=np.array([CLICK]), point_labels=np.array([1]))
    encoder = timed(lambda: ours.embed(image), encoder_runs)
    embedding = ours.embed(image)
    decoder = timed(lambda: ours.decode_logits(embedding, **point), runs)

    def click():
        low_res, scores = ours.decode_logits(embedding, **point)
        return upsample_masks(low_res[0, int(np.argmax(scores[0]))], image.shape[:2]) > 0

    return {"threads": threads, "encoder": encoder, "decoder": decoder, "click": timed(click, runs)}


def table(results: dict) -> str:
    lines = [
        "| runtime | encoder (+ preprocessing) | decoder | click-to-mask | click-to-mask vs Python, same threads |",
        "|---|---:|---:|---:|---:|",
    ]
    python = {r["threads"]: r for r in results["python"]}
    for r in results["python"]:
        lines.append(
            f"| Python onnxruntime, {r['threads']} thread(s) | {r['encoder']['median_ms']:.0f} ms | "
            f"{r['decoder']['median_ms']:.1f} ms | {r['click']['median_ms']:.1f} ms | 1.00x |"
        )
    for r in results["browser"]:
        b = r["backend"]
        where = f"WebGPU ({b['adapter']}) encoder, wasm decoder" if b["encoder"] == "webgpu" else "wasm"
        ref = python.get(b["threads"])
        ratio = f"{r['click']['median_ms'] / ref['click']['median_ms']:.2f}x" if ref else "-"
        lines.append(
            f"| {b['browser']}, onnxruntime-web {b['ort']}, {where}, {b['threads']} thread(s) | "
            f"{r['encoder']['median_ms']:.0f} ms | {r['decoder']['median_ms']:.1f} ms | "
            f"{r['click']['median_ms']:.1f} ms | {ratio} |"
        )
    first = [r for r in results["browser"] if r["backend"]["encoder"] == "wasm"][-1]["first_mask_s"]
    lines.append("")
    lines.append(
        f"Page load to first mask (wasm, all threads): {first['total']:.1f} s = browser start and model load "
        f"{first['browser_and_model']:.1f} s + opening the photo and its encoder run {first['open_and_encode']:.1f} s "
        f"+ the click {first['click']:.2f} s."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--runs", type=int, default=20, help="clicks per runtime (after one untimed)")
    ap.add_argument("--encoder-runs", type=int, default=3, help="encoder runs per runtime (after one untimed)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="the 'all threads' count")
    ap.add_argument("--no-webgpu", action="store_true", help="skip the WebGPU (software adapter) row")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    variant = resolve(args.variant)
    folder = ensure_export(variant, args.out)
    image = bench_photo()
    counts = sorted({1, args.threads})
    results = {
        "machine": machine(),
        "variant": variant.name,
        "image_hw": list(image.shape[:2]),
        "python": [python_row(folder, image, n, args.runs, args.encoder_runs) for n in counts],
        "browser": [browser_row(folder, image, "wasm", n, args.runs, args.encoder_runs) for n in counts],
    }
    if not args.no_webgpu:
        results["browser"].append(browser_row(folder, image, "webgpu", args.threads, args.runs, args.encoder_runs))
    text = (
        f"Measured {describe(results['machine'])} by `scripts/bench_web.py`: {variant.name} FP32 (random weights "
        f"seed 0), the 1800x1200 photo, one click; medians of {args.encoder_runs} encoder runs and {args.runs} "
        "clicks per runtime after one untimed run each, the browser's timed in the page, all in one run. "
        "Click-to-mask: the decoder, then the best mask upsampled to 1800x1200 and thresholded.\n\n" + table(results)
    )
    publish(args.out, "bench-web.json", results, "web", text, docs=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
