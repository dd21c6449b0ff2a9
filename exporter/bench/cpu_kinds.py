"""The same graphs on each kind of CPU this machine can run: how far apart are their outputs?

    python scripts/bench_cpu_kinds.py [--variant tiny] [--precision fp32,fp16,int8]
                                      [--kinds native,avx2] [--out artifacts/bench] [--no-docs]

onnxruntime picks other float and integer kernels on an AVX2-only CPU than on one with
AVX-512 VNNI. This runs every precision's encoder on the sample photo, then its decoder on
those features with the export check's prompts, once per CPU kind: ``native`` (this CPU) and
each emulated kind (``exporter.core.cpu.EMULATED``, QEMU user mode: AVX2-only is the kind whose u8s8
kernels saturate). It reports, per precision, how far each kind's features and masks are from
native's at the same precision, and from native FP32: the room the gates must leave. Latency under emulation means nothing, so none is reported; an
emulated tiny encoder takes about five minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exporter.core.checkout import ROOT

FEATURES = ("high_res_feats_0", "high_res_feats_1", "image_embed")


def worker(spec_path: str) -> None:
    """Run each precision's encoder on the photo, then its decoder on those features with every
    prompt set, and save every output (numpy + onnxruntime only: it may run emulated)."""
    import numpy as np
    import onnxruntime as ort

    from exporter.core.cpu import describe

    spec = json.loads(Path(spec_path).read_text())
    feeds = dict(np.load(spec["feeds"]))
    prompts = [
        {k.split(":", 1)[1]: v for k, v in feeds.items() if k.startswith(f"prompt{i}:")}
        for i in range(spec["prompt_sets"])
    ]
    out = {}

    def session(path: str):
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    for precision, files in spec["graphs"].items():
        enc = session(files["encoder"])
        features = dict(zip([o.name for o in enc.get_outputs()], enc.run(None, {"image": feeds["image"]})))
        out.update({f"{precision}/encoder:{k}": v for k, v in features.items()})
        dec = session(files["decoder"])
        for i, prompt in enumerate(prompts):
            result = dec.run(None, {**{k: features[k][:1] for k in FEATURES}, **prompt})
            out.update({f"{precision}/decoder{i}:{o.name}": v for o, v in zip(dec.get_outputs(), result)})
    np.savez(spec["outputs"], **out)
    print(json.dumps(describe()))


def run_kind(kind: str, spec: dict, folder: Path) -> tuple[dict, dict, float]:
    """(outputs, the CPU as the worker saw it, seconds) of one CPU kind."""
    import numpy as np

    from exporter.core.cpu import emulator

    spec = dict(spec, outputs=str(folder / f"outputs.{kind}.npz"))
    spec_path = folder / f"spec.{kind}.json"
    spec_path.write_text(json.dumps(spec))
    prefix = [sys.executable] if kind == "native" else emulator(kind)
    t0 = time.perf_counter()
    # run from the checkout with -m: the ARM64 userland's Python sees the package through its cwd
    proc = subprocess.run(
        prefix + ["-m", "exporter.bench.cpu_kinds", "--worker", str(spec_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    return dict(np.load(spec["outputs"])), seen, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--precision", default="fp32,fp16,int8")
    ap.add_argument("--kinds", default="native,avx2")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0

    import numpy as np

    from exporter.bench.tables import describe, machine, publish
    from exporter.checks.equivalence import iou, rel_l2
    from exporter.checks.sample_inputs import reference_runs
    from exporter.core.manifest import read_manifest
    from exporter.core.variants import resolve
    from exporter.export.current import ensure_export
    from exporter.precision import parse_precisions
    from exporter.runtime.sessions import graph_file

    variant = resolve(args.variant)
    precisions = parse_precisions(args.precision)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    folder = args.out / f"cpu-kinds-{variant.name}"
    manifest = read_manifest(ensure_export(variant, folder, precisions=precisions, tag="cpu-kinds"))
    model = folder / variant.name
    runs = reference_runs(model / graph_file("encoder", "fp32"), model / graph_file("decoder", "fp32"))
    (image_feed,), _ = runs["encoder"]
    prompt_feeds, _ = runs["decoder"]
    feeds = {"image": image_feed["image"]}
    for i, feed in enumerate(prompt_feeds):
        feeds.update({f"prompt{i}:{k}": v for k, v in feed.items() if k not in FEATURES})
    tmp = Path(tempfile.mkdtemp(prefix="cpu-kinds-", dir=args.out))
    np.savez(tmp / "feeds.npz", **feeds)
    graphs = {
        p: {role: str(model / graph_file(role, p, manifest)) for role in ("encoder", "decoder")} for p in precisions
    }
    spec = {"feeds": str(tmp / "feeds.npz"), "prompt_sets": len(prompt_feeds), "graphs": graphs}
    outputs, seen, seconds = {}, {}, {}
    for kind in kinds:
        print(f"[cpu-kinds] {kind}: running {len(precisions)} encoder + decoder pairs ...", flush=True)
        outputs[kind], seen[kind], seconds[kind] = run_kind(kind, spec, tmp)
        print(
            f"[cpu-kinds] {kind}: {seen[kind]['cpu']}, int8 kernel {seen[kind]['int8_kernel']} ({seconds[kind]:.0f} s)",
            flush=True,
        )
    native = kinds[0]

    def encoder_l2(a: dict, pa: str, b: dict, pb: str) -> float:
        return max(rel_l2(a[f"{pa}/encoder:{k}"], b[f"{pb}/encoder:{k}"]) for k in FEATURES)

    def mask_iou(a: dict, pa: str, b: dict, pb: str) -> float:
        values = []
        for i in range(len(prompt_feeds)):
            x, y = a[f"{pa}/decoder{i}:masks"] > 0, b[f"{pb}/decoder{i}:masks"] > 0
            values += [iou(m, n) for m, n in zip(x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:]))]
        return min(values)

    rows, data = [], []
    for p in precisions:
        row = {
            "precision": p,
            "between_kinds": {
                k: {
                    "encoder_rel_l2": encoder_l2(outputs[k], p, outputs[native], p),
                    "mask_iou_min": mask_iou(outputs[k], p, outputs[native], p),
                }
                for k in kinds[1:]
            },
            "vs_native_fp32": {
                k: {
                    "encoder_rel_l2": encoder_l2(outputs[k], p, outputs[native], "fp32"),
                    "mask_iou_min": mask_iou(outputs[k], p, outputs[native], "fp32"),
                }
                for k in kinds
            },
        }
        data.append(row)
        cells = [
            f"{row['between_kinds'][k]['encoder_rel_l2']:.1e} / {row['between_kinds'][k]['mask_iou_min']:.6f}"
            for k in kinds[1:]
        ]
        cells += [
            "-"
            if p == "fp32" and k == native
            else f"{row['vs_native_fp32'][k]['encoder_rel_l2']:.1e} / {row['vs_native_fp32'][k]['mask_iou_min']:.6f}"
            for k in kinds
        ]
        rows.append(f"| {p} | " + " | ".join(cells) + " |")
    info = machine()
    names = {k: f"{k} ({seen[k]['int8_kernel']})" for k in kinds}
    text = (
        f"Measured {describe(info)} by `scripts/bench_cpu_kinds.py`: {variant.name}, random weights seed 0, "
        f"the sample photo; each precision's encoder, then its decoder on those features with the export "
        f"check's {len(prompt_feeds)} prompt sets (labels 1, 0, 2, 3, -1). Each cell: worst encoder relative L2 / "
        "worst low-res mask IoU. Kinds: " + "; ".join(f"{names[k]}: {seen[k]['cpu']}" for k in kinds) + ".\n\n"
        "| precision | "
        + " | ".join(f"{k} vs {native}, same precision" for k in kinds[1:])
        + " | "
        + " | ".join(f"vs {native} FP32, run on {k}" for k in kinds)
        + " |\n"
        "|---|" + "---:|" * (2 * len(kinds) - 1) + "\n" + "\n".join(rows) + "\n"
    )
    publish(
        args.out,
        f"cpu-kinds-{variant.name}.json",
        {"machine": info, "kinds": seen, "seconds": seconds, "rows": data},
        "cpu-kinds",
        text,
        docs=not args.no_docs,
    )
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
