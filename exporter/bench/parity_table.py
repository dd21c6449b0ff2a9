"""Run the parity suite's plan on exported artifacts and write the parity table in docs/parity.md.

    python scripts/parity_table.py [--artifacts DIR] [--no-docs]

Uses ``DIR/<variant>/`` for every variant in ``exporter/parity/plan.py`` (default
``artifacts/bench``, as written by ``scripts/bench_export.py``: random weights, seed 0), the
same photos and prompt kinds as the CI suite, and writes each folder's parity report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from exporter.bench.tables import describe, machine, publish
from exporter.core.checkout import ROOT
from exporter.parity.engine import run_parity
from exporter.parity.plan import PLAN
from exporter.parity.report import save_report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    rows, summary = [], {}
    for name, photos in PLAN.items():
        folder = args.artifacts / name
        print(f"[parity] {name}: {', '.join(photos)}", flush=True)
        result = run_parity(folder, samples=photos)
        save_report(result)
        prompts = [c.metrics for c in result.cases if c.kind != "encoder"]
        encoders = [c.metrics for c in result.cases if c.kind == "encoder"]
        s = {
            "photos": len(photos),
            "cases": len(result.cases),
            "passed": result.passed,
            "iou_min": result.worst_iou,
            "flips_outside_band": max(m["flips_outside_band"] for m in prompts),
            "logits_max_abs": max(m["logits_max_abs"] for m in prompts),
            "score_abs": max(m["score_abs"] for m in prompts),
            "encoder_rel_l2": max(m["encoder_rel_l2"] for m in encoders),
            "preprocess_max_abs": max(m["preprocess_max_abs"] for m in encoders),
            "seconds": result.seconds,
        }
        summary[name] = s
        rows.append(
            f"| {name} | {s['photos']} | {s['cases']} | {'PASS' if s['passed'] else 'FAIL'} | "
            f"{s['iou_min']:.6f} | {s['flips_outside_band']} | {s['logits_max_abs']:.1e} | "
            f"{s['score_abs']:.1e} | {s['encoder_rel_l2']:.1e} | {s['preprocess_max_abs']:.1e} | "
            f"{s['seconds']:.0f} s |"
        )
    info = machine()
    text = (
        f"Produced {describe(info)} by `scripts/parity_table.py` (the CI suite's plan: "
        "`exporter/parity/plan.py`), FP32, random weights seed 0, all 9 prompt kinds on every photo. "
        "Worst value over all cases of each variant:\n\n"
        "| variant | photos | cases | verdict | mask IoU min | flips outside band | logits max abs | "
        "score abs | encoder rel L2 | preprocess max abs | time |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    publish(
        args.artifacts,
        "parity-table.json",
        {"machine": info, "variants": summary},
        "parity",
        text,
        docs=not args.no_docs,
    )
    return 0 if all(s["passed"] for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
