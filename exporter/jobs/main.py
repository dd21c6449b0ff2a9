"""The main job behind ``scripts/main.sh``: random weights -> export (FP32, FP16, INT8) -> parity of
every precision, then a summary.

Each step is a library call; a failed step stops the job and makes it exit 1. Random weights
stand in for the official checkpoint, which cannot be downloaded here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter.core.checkout import ROOT
from exporter.core.errors import ParityFailed
from exporter.core.manifest import graph_bytes
from exporter.core.variants import resolve
from exporter.jobs.steps import Job, rel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("variant", nargs="?", default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts")
    ap.add_argument("--precision", default="fp32,fp16,int8", help="precisions to export and gate")
    args = ap.parse_args(argv)
    variant = resolve(args.variant)
    job = Job("main")

    ckpt = args.out / "checkpoints" / f"{variant.name}-random-seed{args.seed}.pt"

    def weights():
        from exporter.checkpoints.loading import random_model, save_checkpoint

        model, source = random_model(variant, args.seed)
        save_checkpoint(model, ckpt, force=True, random_seed=args.seed)
        return f"{rel(ckpt)} (state dict {source.state_dict_sha256[:12]})"

    def verify():
        from exporter.checkpoints.loading import load_checkpoint

        model, source = load_checkpoint(variant, ckpt)
        return f"strict load ok, {sum(p.numel() for p in model.parameters()):,} parameters"

    def export():
        from exporter.export.pipeline import export_variant

        # the job owns its output folder: re-running it replaces the previous export
        result = export_variant(variant, args.out, checkpoint=ckpt, force=True, precisions=args.precision.split(","))
        sizes = ", ".join(f"{f} {graph_bytes(e) / 1e6:.1f} MB" for f, e in result.manifest["files"].items())
        simp = ", ".join(f"{g} {r['status']}" for g, r in result.manifest["simplification"].items())
        return f"{rel(result.folder)}: {sizes} (simplification: {simp})"

    def parity(precision):
        from exporter.parity.engine import run_parity
        from exporter.parity.report import save_report

        result = run_parity(args.out / variant.name, precision, checkpoint=ckpt, automask=True)
        _, html_path = save_report(result)
        automask = result.automask_cases
        summary = (
            f"{len(result.cases)} cases on {len(result.images)} photos, worst mask IoU {result.worst_iou:.6f}"
            + (
                f", automask {sum(c.metrics['masks_ours'] for c in automask)} masks matched (IoU min "
                f"{result.summary()['automask_iou_min']:.6f})"
                if automask
                else ""
            )
            + f"; report {rel(html_path)}"
        )
        if not result.passed:
            raise ParityFailed(f"{len(result.failures())} failure(s): {result.failures()[0]}; {summary}")
        return summary

    ok = (
        job.run(f"random weights (seed {args.seed})", weights)
        and job.run("checkpoint round trip", verify)
        and job.run(f"export ({args.precision})", export)
    )
    for precision in [p for p in args.precision.split(",") if p] if ok else []:
        if not job.run(f"parity {precision} vs official PyTorch", lambda precision=precision: parity(precision)):
            break
    job.summary(f"sam2-onnx main job: {variant.name}, random weights seed {args.seed}")
    print("note: random weights stand in for official checkpoints, which cannot be downloaded here.")
    return 1 if job.failed else 0


if __name__ == "__main__":
    sys.exit(main())
