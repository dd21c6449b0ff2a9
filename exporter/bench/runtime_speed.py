"""Benchmark: the ONNX Runtime predictor against the official torch predictor, one run.

On a 1800x1200 photo (scikit-image's "coffee", 600x400, upscaled with bicubic) and ``tiny``
with seeded random weights: encoder time (``embed`` vs ``set_image``, preprocessing included)
and click-to-mask time (one foreground click, multimask: decoder + upsampling to 1800x1200 +
threshold; ``decode`` vs ``predict``). Both use the same thread count. Medians of N runs after
a warm-up. Speed does not depend on the weights' values.

    python scripts/bench_runtime.py [--variant tiny] [--runs 20] [--threads T] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from exporter.bench.tables import describe, machine, prepare, publish, timed
from exporter.checkpoints.loading import random_model
from exporter.core.checkout import ROOT
from exporter.runtime import SAM2OnnxPredictor
from exporter.runtime.transforms import upsample_masks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--runs", type=int, default=20, help="click-to-mask runs (encoder: a quarter, at least 3)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    variant, folder, image = prepare(args)
    point = dict(point_coords=np.array([[900.0, 600.0]]), point_labels=np.array([1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        ref = SAM2ImagePredictor(random_model(variant, 0)[0])
    ours = SAM2OnnxPredictor(folder, threads=args.threads)
    enc_runs = max(3, args.runs // 4)

    print(f"[bench] encoder x{enc_runs}, click-to-mask x{args.runs}, {args.threads} threads ...", flush=True)
    with torch.inference_mode():
        torch_encoder = timed(lambda: ref.set_image(image), enc_runs)
        torch_click = timed(lambda: ref.predict(**point), args.runs)
    ort_encoder = timed(lambda: ours.embed(image), enc_runs)
    embedding = ours.embed(image)
    ort_click = timed(lambda: ours.decode(embedding, **point), args.runs)
    low_res = ours.decode(embedding, **point, return_logits=True)[2][None]
    upsample = timed(lambda: upsample_masks(low_res, image.shape[:2]), args.runs)

    results = {
        "machine": machine(),
        "variant": variant.name,
        "image_hw": list(image.shape[:2]),
        "threads": args.threads,
        "torch_encoder": torch_encoder,
        "ort_encoder": ort_encoder,
        "torch_click_to_mask": torch_click,
        "ort_click_to_mask": ort_click,
        "ort_upsample_3_masks": upsample,
    }
    te, oe, tc, oc = (r["median_ms"] for r in (torch_encoder, ort_encoder, torch_click, ort_click))
    text = (
        f"Measured {describe(results['machine'])}, {variant.name} (random weights seed 0), "
        f"1800x1200 photo, {args.threads} threads, medians of one run:\n\n"
        "| step | torch (official predictor) | onnxruntime (ours) | ours / torch |\n|---|---:|---:|---:|\n"
        f"| encoder (preprocess + encoder) | {te:.0f} ms | {oe:.0f} ms | {oe / te:.2f}x |\n"
        f"| click-to-mask (decoder + upsampling to 1800x1200) | {tc:.1f} ms | {oc:.1f} ms | {oc / tc:.2f}x |\n"
        f"| of which upsampling 3 masks (numpy) | | {upsample['median_ms']:.1f} ms | |\n"
    )
    publish(args.out, "bench-runtime.json", results, "runtime", text, docs=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
