"""Benchmark: our automatic mask generator (onnxruntime) against the official one (torch), one run.

Wall time of ``generate`` at points_per_side=32 (1024 single-click prompts, the official
default) on a 1800x1200 photo (scikit-image's "coffee", upscaled as in bench_runtime.py),
``tiny`` with seeded random weights, same thread count, in two settings:

- ``defaults``: the official thresholds. With random weights no mask passes the predicted-IoU
  filter, so this shows the prompt-processing cost (encoder + 1024 decoder prompts) and what
  our filter-before-upsampling saves;
- ``lowered``: pred_iou_thresh 0, stability_score_thresh 0: every one of the 3072 masks is
  upsampled, scored and boxed, the worst case for our post-processing.

Each generator runs once per setting (the official one takes minutes); docs/runtime.md quotes
these single wall times and their ratio. Speed does not depend on the weights' values, but
how many masks survive the filters does.

    python scripts/bench_automask.py [--variant tiny] [--threads T] [--settings defaults,lowered] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import torch

from exporter.bench.tables import describe, machine, prepare, publish
from exporter.checkpoints.loading import random_model
from exporter.core.checkout import ROOT
from exporter.parity.automask import compare
from exporter.runtime.automask import SAM2OnnxAutomaticMaskGenerator

SETTINGS = {"defaults": {}, "lowered": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--points-per-side", type=int, default=32)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    variant, folder, image = prepare(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

        model = random_model(variant, 0)[0]
    rows = {}
    for name in args.settings.split(","):
        params = dict(points_per_side=args.points_per_side, **SETTINGS[name])
        ours = SAM2OnnxAutomaticMaskGenerator(folder, threads=args.threads, **params)
        print(f"[bench] {name}: ours ...", flush=True)
        t0 = time.perf_counter()
        mine = ours.generate(image)
        t_ours = time.perf_counter() - t0
        print(f"[bench] {name}: ours {t_ours:.1f} s, {len(mine)} masks; official ...", flush=True)
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            reference = SAM2AutomaticMaskGenerator(model, **params).generate(image)
            t_ref = time.perf_counter() - t0
        print(f"[bench] {name}: official {t_ref:.1f} s, {len(reference)} masks", flush=True)
        agreement = compare(mine, reference)
        rows[name] = {
            "params": params,
            "official_s": t_ref,
            "ours_s": t_ours,
            "speedup": t_ref / t_ours,
            "ours_split_s": dict(ours.seconds),
            "masks_ours": len(mine),
            "masks_official": len(reference),
            "matched_iou_min": agreement["automask_iou_min"],
        }
        del mine, reference

    results = {
        "machine": machine(),
        "variant": variant.name,
        "image_hw": list(image.shape[:2]),
        "threads": args.threads,
        "points_per_side": args.points_per_side,
        "settings": rows,
    }
    lines = [
        f"Measured {describe(results['machine'])}, {variant.name} (random weights seed 0), 1800x1200 photo, "
        f"points_per_side={args.points_per_side} ({args.points_per_side**2} prompts), {args.threads} threads, "
        "one run each:\n",
        "| setting | masks (ours / official) | official (torch) | ours (onnxruntime) | speed-up | ours: encoder / decoder / masks |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in rows.items():
        s = r["ours_split_s"]
        lines.append(
            f"| {name} | {r['masks_ours']} / {r['masks_official']} | {r['official_s']:.1f} s | {r['ours_s']:.1f} s "
            f"| {r['speedup']:.1f}x | {s['encoder']:.1f} / {s['decoder']:.1f} / {s['masks']:.1f} s |"
        )
    publish(args.out, "bench-automask.json", results, "automask", "\n".join(lines) + "\n", docs=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
