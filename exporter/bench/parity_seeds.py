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

Rows accumulate in ``OUT/parity-seeds.json`` by (seed, precision), each with the machine and
date it ran on: after a change to INT8 only, ``--precision int8`` re-exports each seed (FP32
and INT8) and gates INT8 alone, and the table keeps the FP32 and FP16 rows of the earlier run.
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
from exporter.parity.report import as_json, report_names, save_report
from exporter.precision import PRECISIONS, parse_precisions


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
    paths = {p: folder / report_names(p)[0] for p in precisions}
    if not (folder / "manifest.json").is_file() or not all(q.is_file() for q in paths.values()):
        return None
    return {p: json.loads(q.read_text()) for p, q in paths.items()}


def one_seed(variant, seed: int, precisions: list[str], out: Path, resume: bool) -> list[dict]:
    """Export ``seed`` at ``precisions`` (plus FP32, the source) and gate each of ``precisions``."""
    folder = out / f"seed{seed}" / variant.name
    reports = saved(folder, precisions) if resume else None
    reused = reports is not None
    if not reused:
        try:
            export = export_variant(
                variant,
                out / f"seed{seed}",
                seed=seed,
                force=True,
                precisions=parse_precisions(",".join(precisions)),
                stream=None,
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
    asked = args.precision.split(",")  # gated as asked: "int8" re-checks INT8 only (FP32 is still exported)
    precisions = [p for p in parse_precisions(args.precision) if p in asked]
    info = machine()
    fresh = [
        r | {"machine": info} for seed in seeds for r in one_seed(variant, seed, precisions, args.out, args.resume)
    ]
    rows = merged(args.out / "parity-seeds.json", variant.name, fresh)
    passed = sum(r["verdict"] == "pass" for r in rows)
    text = (
        f"Measured {'; '.join(sorted({describe(r['machine']) for r in rows}))} by `scripts/parity_seeds.py`: "
        f"{variant.name} exported from sam2's random initialisation under seeds "
        f"{_ranges(sorted({r['seed'] for r in rows}))}, each through `sam2-onnx parity` at "
        f"{', '.join(p for p in PRECISIONS if any(r['precision'] == p for r in rows))} (7 photos x 9 prompt kinds, "
        f"automatic mask generation at FP32); {passed} of {len(rows)} runs pass.\n\n" + table(rows)
    )
    publish(
        args.out, "parity-seeds.json", {"variant": variant.name, "rows": rows}, "seeds", text, docs=not args.no_docs
    )
    return 0 if all(r["verdict"] == "pass" for r in fresh) else 1


def _ranges(seeds: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    runs: list[list[int]] = []
    for s in seeds:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def merged(saved: Path, variant: str, fresh: list[dict]) -> list[dict]:
    """``fresh`` rows over an earlier run's of the same variant, by (seed, precision): a sweep at
    one precision keeps the others' rows (each row carries the machine and date it ran on)."""
    earlier = json.loads(saved.read_text()) if saved.is_file() else {}
    old = [r | {"machine": r.get("machine") or earlier.get("machine")} for r in earlier.get("rows", [])]
    if earlier.get("variant") != variant or any(r["machine"] is None for r in old):
        old = []
    rows = {(r["seed"], r["precision"]): r for r in old + fresh}
    order = {p: i for i, p in enumerate(PRECISIONS)}
    return sorted(rows.values(), key=lambda r: (r["seed"], order.get(r["precision"], len(order))))


if __name__ == "__main__":
    sys.exit(main())
