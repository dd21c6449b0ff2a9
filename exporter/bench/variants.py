"""Benchmark: ``sam2-onnx bench`` for several variants, one table in docs/performance.md.

For each variant: the seed-0 random-weight export at the precisions asked for (made unless
``--out`` already holds it), then ``run_bench`` (torch eager FP32 and onnxruntime at every
precision, each engine in its own process, same thread count), ``bench.json`` + ``bench.png``
written into the model folder, and one table row per engine. Latency does not depend on the
weights' values; bytes and peak RSS do not either.

    python scripts/bench_variants.py [--variant tiny --variant large] [--precision fp32,fp16,int8]
                                     [--precision large=fp32] [--runs 10] [--rounds 3] [--threads T]
                                     [--out artifacts/bench] [--no-docs]

``--precision VARIANT=LIST`` sets one variant's precisions (``large``'s INT8 calibration alone
takes minutes); a plain ``--precision LIST`` sets the rest.

Without ``--variant`` it runs all eight (about an hour on 2 cores, ``large`` export peaking near
20 GB with INT8 calibration).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from exporter.bench.benchmark import Engine, run_bench, save_bench
from exporter.bench.tables import describe as describe_machine
from exporter.bench.tables import publish
from exporter.core.checkout import ROOT
from exporter.core.variants import resolve, sam2_variants
from exporter.export.current import ensure_export
from exporter.precision import parse_precisions


def rows(bench: dict) -> list[str]:
    out = []
    for r in bench["results"]:
        ratio = r["vs_torch"] or {}
        size = f"{sum(r['bytes'].values()) / 1e6:.1f} MB" if r["bytes"] else ""
        out.append(
            f"| {bench['variant']} | {Engine(r['engine'], r['precision']).label} | "
            f"{r['encoder']['median_ms']:.0f} ms | {ratio.get('encoder', 1.0):.2f}x | "
            f"{r['decoder']['median_ms']:.1f} ms | {ratio.get('decoder', 1.0):.2f}x | {size} | "
            f"{r['peak_rss_mb'] / 1024:.2f} GB |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", help="repeatable; default: all eight")
    ap.add_argument(
        "--precision",
        action="append",
        default=[],
        metavar="[VARIANT=]LIST",
        help="precisions to export and time (default fp32,fp16,int8); repeatable per variant",
    )
    ap.add_argument("--runs", type=int, default=10, help="encoder runs per engine (decoder: 5x)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating passes over the engines per variant, calls pooled (default 3)",
    )
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    variants = [resolve(v) for v in args.variant] if args.variant else sam2_variants()
    default, per_variant = "fp32,fp16,int8", {}
    for item in args.precision:
        name, sep, value = item.rpartition("=")
        if sep:
            per_variant[resolve(name).name] = value
        else:
            default = value
    table = [
        "| variant | engine | encoder median | vs torch | decoder median | vs torch | files (enc + dec) | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    benches = []
    for variant in variants:
        precisions = parse_precisions(per_variant.get(variant.name, default))
        folder = ensure_export(variant, args.out, precisions=precisions)
        bench = run_bench(
            folder,
            runs=args.runs,
            threads=args.threads,
            rounds=args.rounds,
            progress=lambda label, v=variant.name: print(f"[bench] {v}: {label} ...", flush=True),
        )
        save_bench(bench, folder, force=True)
        benches.append(bench)
        table += rows(bench)
    first = benches[0]
    r0 = first["results"][0]
    text = (
        f"Measured {describe_machine(first['machine'])} by `scripts/bench_variants.py` (`sam2-onnx bench` "
        f"per variant, one run of {first['rounds']} rounds alternating the engines, each engine in a fresh "
        f"process per round; {first['threads']} threads; {first['image']['name']}; "
        f"{r0['encoder']['runs']} encoder / {r0['decoder']['runs']} decoder calls per engine pooled over the "
        f"rounds, each round after {first['warmup']} warm-up; random weights seed 0): medians, and ratios of "
        "medians over torch eager FP32 in the same run.\n\n" + "\n".join(table) + "\n"
    )
    publish(args.out, "bench-variants.json", {"benches": benches}, "variants", text, docs=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
