"""Parity over many random-weight seeds: does every export pass, at every precision, with an
automatic-mask comparison of more than a handful of masks?

    python scripts/parity_seeds.py [--variant tiny] [--seeds 0-9] [--precision fp32,fp16,int8]
                                   [--out artifacts/seeds] [--no-docs] [--resume]

For each seed: export the variant from sam2's initialisation under that seed at every
precision, then run ``sam2-onnx parity`` (the full default plan: 7 photos x 9 prompt kinds,
automatic mask generation at FP32) at each precision and save its report. One table row per
seed and precision goes into docs/parity.md; the JSON keeps every summary, the INT8 kernel-safety
verdict and which step of the automask ladder each case needed. Exits 1 if any seed fails.
One seed's check does not prove another's: that is the point of running ten.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from exporter.bench.tables import describe, machine, publish
from exporter.core.checkout import ROOT
from exporter.core.errors import Sam2OnnxError
from exporter.core.variants import resolve
from exporter.export.pipeline import export_variant
from exporter.parity.engine import run_parity
from exporter.parity.report import as_json, save_report
from exporter.precision import parse_precisions


def seed_list(text: str) -> list[int]:
    """``"0-9"`` or ``"0,3,11"`` -> seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return seeds


def row(seed: int, report: dict, int8: dict) -> dict:
    """One table row from a saved parity report (``parity[.PRECISION].json``)."""
    s, precision = report["summary"], report["precision"]
    auto = [c["metrics"] for c in report["cases"] if "automask_step" in c["metrics"]]
    return {
        "seed": seed,
        "precision": precision,
        "verdict": s["verdict"],
        "cases": len(report["cases"]),
        "iou_min": s["iou_min"],
        "iou_median": s["iou_median"],
        "iou_min_all_pixels": s["iou_min_all_pixels"],
        "logits_max_abs": s["logits_max_abs"],
        "automask_matched_min": min((m["automask_masks_matched"] for m in auto), default=None),
        "automask_steps": sorted({m["automask_step"] for m in auto}),
        "int8_encoder": int8.get("encoder", {}).get("candidate") if precision == "int8" else None,
        "kernel_safe": int8.get("kernel_safe") if precision == "int8" else None,
        "failures": report["failures"][:3],
    }


def saved(folder: Path, precisions: list[str]) -> dict[str, dict] | None:
    """The parity reports of an earlier run of this seed, if it finished every precision."""
    paths = {p: folder / ("parity.json" if p == "fp32" else f"parity.{p}.json") for p in precisions}
    if not (folder / "manifest.json").is_file() or not all(q.is_file() for q in paths.values()):
        return None
    return {p: json.loads(q.read_text()) for p, q in paths.items()}


def one_seed(variant, seed: int, precisions: list[str], out: Path, resume: bool) -> list[dict]:
    folder = out / f"seed{seed}" / variant.name
    reports = saved(folder, precisions) if resume else None
    reused = reports is not None
    if not reused:
        try:
            export = export_variant(
                variant, out / f"seed{seed}", seed=seed, force=True, precisions=precisions, stream=None
            )
        except Sam2OnnxError as exc:  # an export that refuses is a result of this sweep, not a crash of it
            return [{"seed": seed, "precision": ",".join(precisions), "verdict": "export refused", "detail": str(exc)}]
        reports = {}
        for precision in precisions:
            result = run_parity(export.folder, precision, automask=True, stream=None)
            save_report(result)
            reports[precision] = as_json(result)
    int8 = json.loads((folder / "manifest.json").read_text()).get("int8", {})
    rows = [row(seed, reports[p], int8) for p in precisions]
    for r in rows:
        print(
            f"[seeds] seed {seed} {r['precision']}: {r['verdict']}, IoU min {r['iou_min']:.6f}"
            + (
                f", automask >= {r['automask_matched_min']} masks matched (ladder steps {r['automask_steps']})"
                if r["automask_matched_min"] is not None
                else ""
            )
            + (" (saved report)" if reused else ""),
            flush=True,
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| seed | precision | verdict | cases | mask IoU min | IoU min, all pixels | logits max abs | "
        "automask: fewest masks matched (ladder steps) | INT8 encoder |",
        "|---:|---|---|---:|---:|---:|---:|---|---|",
    ]
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    for r in rows:
        if "cases" not in r:
            lines.append(f"| {r['seed']} | {r['precision']} | **{r['verdict']}** | | | | | | {r['detail'][:120]} |")
            continue
        auto = (
            f"{r['automask_matched_min']} ({', '.join(map(str, r['automask_steps']))})"
            if r["automask_matched_min"] is not None
            else "-"
        )
        enc = (
            f"{r['int8_encoder']}, {'kernel-safe' if r['kernel_safe'] else 'NOT kernel-safe'}"
            if r["precision"] == "int8"
            else ""
        )
        lines.append(
            f"| {r['seed']} | {r['precision']} | {r['verdict'].upper()} | {r['cases']} | "
            f"{fmt(r['iou_min'], '.6f')} | {fmt(r['iou_min_all_pixels'], '.6f')} | "
            f"{fmt(r['logits_max_abs'], '.1e')} | {auto} | {enc} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--seeds", default="0-9")
    ap.add_argument("--precision", default="fp32,fp16,int8")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "seeds")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="reuse a seed's saved parity reports when it finished every precision earlier",
    )
    args = ap.parse_args(argv)
    variant, seeds = resolve(args.variant), seed_list(args.seeds)
    precisions = parse_precisions(args.precision)
    rows = [row for seed in seeds for row in one_seed(variant, seed, precisions, args.out, args.resume)]
    info = machine()
    passed = sum(r["verdict"] == "pass" for r in rows)
    text = (
        f"Measured {describe(info)} by `scripts/parity_seeds.py`: {variant.name} exported from sam2's random "
        f"initialisation under seeds {args.seeds}, each through `sam2-onnx parity` at {', '.join(precisions)} "
        f"(7 photos x 9 prompt kinds, automatic mask generation at FP32); {passed} of {len(rows)} runs pass.\n\n"
        + table(rows)
    )
    publish(
        args.out,
        "parity-seeds.json",
        {"machine": info, "variant": variant.name, "rows": rows},
        "seeds",
        text,
        docs=not args.no_docs,
    )
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
