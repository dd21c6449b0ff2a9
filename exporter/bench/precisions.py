"""Benchmark and parity table per precision: FP32, FP16 and INT8 artifacts, one run.

For each variant (default ``tiny``): export with ``--precision fp32,fp16,int8`` (random weights,
seed 0) unless ``OUT/<variant>`` already holds that; run the parity suite's CI plan at every
precision; then time, with the same thread count and in one process, the official torch
predictor (eager FP32: ``set_image`` / ``predict``) and our onnxruntime predictor at each
precision (``embed`` / ``decode``: preprocessing + encoder; decoder + upsampling), on a
1800x1200 photo with one click. Writes ``bench-precision.json`` and the table in docs/precision.md.

Accuracy numbers come from random weights and are a lower bound on real behaviour (see the
parity report); latencies do not depend on the weights' values.

    python scripts/bench_precision.py [--variant tiny ...] [--runs 5] [--threads T] [--no-docs]
    python scripts/bench_precision.py --table-only     # re-render the docs table from the JSON

Results accumulate in ``OUT/bench-precision.json`` by variant: benchmarking ``large`` later keeps
``tiny``'s row (each row says when and where it was measured).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from exporter.bench.tables import bench_photo, describe, machine, publish, timed
from exporter.checkpoints.loading import random_model
from exporter.core.checkout import ROOT
from exporter.core.manifest import read_manifest
from exporter.core.variants import resolve
from exporter.export.current import ensure_export
from exporter.parity.engine import run_parity
from exporter.parity.plan import PLAN
from exporter.parity.report import save_report
from exporter.runtime import SAM2OnnxPredictor

PRECISIONS = ["fp32", "fp16", "int8"]


def bench_variant(name: str, out: Path, runs: int, threads: int, image: np.ndarray) -> dict:
    variant = resolve(name)
    folder = ensure_export(variant, out, precisions=PRECISIONS)
    manifest = read_manifest(folder)
    rows = {}
    for precision in PRECISIONS:
        print(f"[bench] {variant.name} parity {precision}: {', '.join(PLAN[variant.name])}", flush=True)
        result = run_parity(folder, precision, samples=PLAN[variant.name])
        save_report(result)
        rows[precision] = result.summary() | {"cases": len(result.cases)}
    point = dict(point_coords=np.array([[900.0, 600.0]]), point_labels=np.array([1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        ref = SAM2ImagePredictor(random_model(variant, 0)[0])
    print(f"[bench] {variant.name} latency: encoder x{runs}, decoder x{4 * runs}, {threads} threads", flush=True)
    with torch.inference_mode():
        torch_row = {
            "encoder": timed(lambda: ref.set_image(image), runs),
            "decoder": timed(lambda: ref.predict(**point), 4 * runs),
        }
    for precision in PRECISIONS:
        ours = SAM2OnnxPredictor(folder, precision=precision, threads=threads)
        embedding = ours.embed(image)
        rows[precision]["encoder"] = timed(lambda ours=ours: ours.embed(image), runs)
        rows[precision]["decoder"] = timed(lambda ours=ours, e=embedding: ours.decode(e, **point), 4 * runs)
    return {
        "variant": variant.name,
        "torch": torch_row,
        "onnxruntime": rows,
        "int8_choice": {role: manifest["int8"][role]["candidate"] for role in ("encoder", "decoder")},
        "fp16_fp32_nodes": {
            role: manifest["fp16"][role]["blocked_nodes"] + len(manifest["fp16"][role]["fp32_nodes_added_by_search"])
            for role in ("encoder", "decoder")
        },
    }


def _sci(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def _fixed(value) -> str:
    return "-" if value is None else f"{value:.6f}"


def table(results: list[dict]) -> str:
    lines = [
        "| variant | precision | encoder + decoder files | bytes vs FP32 (encoder) | parity | IoU min | "
        "IoU median | IoU min, all pixels | encoder rel L2 | logits max abs | encoder | speed vs FP32 ORT | "
        "decoder + upsampling |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = r["torch"]
        lines.append(
            f"| {r['variant']} | torch eager FP32 (official) | | | | | | | | | {t['encoder']['median_ms']:.0f} ms "
            f"| | {t['decoder']['median_ms']:.1f} ms |"
        )
        rows = r["onnxruntime"]
        base = rows["fp32"]
        fp32_bytes, fp32_enc = sum(base["bytes"].values()), base["encoder"]["median_ms"]
        for precision, row in rows.items():
            files = " + ".join(f"{row['files'][g]} ({row['bytes'][g] / 1e6:.1f} MB)" for g in ("encoder", "decoder"))
            total, enc = sum(row["bytes"].values()), row["encoder"]["median_ms"]
            ratio = f"{total / fp32_bytes:.2f}x ({row['bytes']['encoder'] / base['bytes']['encoder']:.2f}x)"
            label = precision.upper()
            if precision == "int8" and "/" in r.get("int8_choice", {}).get("encoder", ""):
                label += f" ({r['int8_choice']['encoder'].split('/')[1]} weights)"  # "dynamic/int7" -> int7
            lines.append(
                f"| {r['variant']} | onnxruntime {label} | {files} | {ratio} | "
                f"{row['verdict'].upper()} ({row['cases']} cases) | {row['iou_min']:.6f} | "
                f"{row['iou_median']:.6f} | {_fixed(row.get('iou_min_all_pixels'))} | "
                f"{_sci(row.get('encoder_rel_l2_max'))} | "
                f"{row['logits_max_abs']:.2e} | {enc:.0f} ms | "
                f"{fp32_enc / enc:.2f}x | {row['decoder']['median_ms']:.1f} ms |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", help="repeatable; default: tiny")
    ap.add_argument("--runs", type=int, default=5, help="encoder runs per side (decoder: 4x as many)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench-precision")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    ap.add_argument("--table-only", action="store_true", help="no measuring: re-render from the JSON")
    args = ap.parse_args(argv)
    saved = args.out / "bench-precision.json"
    previous = json.loads(saved.read_text())["results"] if saved.is_file() else []
    info = machine()
    fresh = []
    if not args.table_only:
        torch.set_num_threads(args.threads)
        image = bench_photo()
        fresh = [
            bench_variant(v, args.out, args.runs, args.threads, image) | {"machine": info, "threads": args.threads}
            for v in args.variant or ["tiny"]
        ]
    results = sorted({r["variant"]: r for r in previous + fresh}.values(), key=lambda r: r["variant"])
    measured = sorted({f"{describe(r['machine'])}, {r['threads']} threads" for r in results})
    text = (
        f"Measured {'; '.join(measured)} by `scripts/bench_precision.py`, random weights seed 0, one run per "
        "variant; latencies are medians on a 1800x1200 photo (encoder includes preprocessing, decoder "
        "includes upsampling 3 masks); parity columns are the CI plan's photos with all 9 prompt kinds, gated "
        "per precision by `configs/`. Random-weight accuracy is a lower bound: their mask logits sit within "
        "~0.2 of the threshold, so small errors flip many pixels.\n\n" + table(results)
    )
    publish(args.out, "bench-precision.json", {"results": results}, "precision", text, docs=not args.no_docs)
    return 0 if all(row["verdict"] == "pass" for r in fresh for row in r["onnxruntime"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
