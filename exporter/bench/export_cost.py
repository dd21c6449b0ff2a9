"""Benchmark: export time and peak RSS per variant, written to JSON and the table in docs/performance.md.

Each variant is exported (random weights, seed 0, default options, as ``sam2-onnx export``)
in its own fresh process, so its peak RSS is that process's alone (``wait4`` rusage); the
process writes its export's seconds per step as JSON.

    python scripts/bench_export.py [VARIANT ...] [--out DIR] [--no-docs]

Defaults: all 8 variants, ``artifacts/bench``; results go to ``DIR/bench-export.json`` and
replace the table between the ``bench:export`` markers (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from exporter.bench.tables import describe, machine, publish
from exporter.core.checkout import ROOT
from exporter.core.manifest import graph_bytes, read_manifest
from exporter.core.variants import resolve, sam2_variants


def _child(name: str, out: str, seconds_file: str) -> None:
    """The measured process: one export, its seconds per step saved as JSON."""
    from exporter.export.pipeline import export_variant

    result = export_variant(resolve(name), Path(out), seed=0, force=True, stream=None)
    Path(seconds_file).write_text(json.dumps(result.seconds))


def bench_one(name: str, out: Path) -> dict:
    seconds_file = out / f".{name}.seconds.json"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "exporter.bench.export_cost", "--child", name, str(out), str(seconds_file)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"export {name} failed (exit {proc.returncode}):\n{log}")
    manifest = read_manifest(out / name)
    steps = json.loads(seconds_file.read_text())
    seconds_file.unlink()
    return {
        "variant": name,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(usage.ru_maxrss * 1024 / 1e9, 2),  # Linux reports KiB
        "bytes": {f: graph_bytes(e) for f, e in manifest["files"].items()},  # with external data
        "simplification": {g: r["status"] for g, r in manifest["simplification"].items()},
        "steps_s": {step: round(s, 1) for step, s in steps.items()},
    }


def table(results: list[dict], info: dict) -> str:
    lines = [
        f"Measured {describe(info)}, random weights seed 0, opset 17, onnxsim on, one fresh process per variant.",
        "",
        "| variant | export wall | peak RSS | encoder.onnx | decoder.onnx | simplified |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        simp = "yes" if set(r["simplification"].values()) == {"applied"} else json.dumps(r["simplification"])
        lines.append(
            f"| {r['variant']} | {r['wall_s']:.0f} s | {r['peak_rss_gb']:.1f} GB | "
            f"{r['bytes']['encoder.onnx'] / 1e6:.0f} MB | {r['bytes']['decoder.onnx'] / 1e6:.1f} MB | {simp} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    names = [resolve(v).name for v in args.variants] or [v.name for v in sam2_variants()]
    info, results = machine(), []
    for name in names:
        print(f"[bench] export {name} ...", flush=True)
        results.append(bench_one(name, args.out))
        r = results[-1]
        print(f"[bench] {name}: {r['wall_s']} s, peak RSS {r['peak_rss_gb']} GB", flush=True)
    publish(
        args.out,
        "bench-export.json",
        {"machine": info, "results": results},
        "export",
        table(results, info),
        docs=not args.no_docs,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
