"""Shared by the benchmark scripts: machine description, the benchmark photo, the seed-0
export they time, and README table replacement."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.bench_worker import timed as worker_timed  # noqa: E402
from exporter.benchmark import machine  # noqa: E402,F401  (the scripts' machine description)


def timed(fn, runs: int) -> dict:
    """One warm-up call, then ``runs`` timed calls: median / min / max in ms."""
    return worker_timed(fn, 1, runs)


def bench_photo():
    """The 1800x1200 benchmark photo: scikit-image's "coffee" (600x400), upscaled bicubic."""
    import numpy as np
    import skimage.data
    from PIL import Image

    return np.array(Image.fromarray(skimage.data.coffee()).resize((1800, 1200), Image.BICUBIC))


def seed0_export(variant, out: Path) -> Path:
    """``out/<variant>``, exported with random weights seed 0 unless it already is one."""
    from exporter.errors import Sam2OnnxError
    from exporter.export import export_variant
    from exporter.manifest import read_manifest

    folder = out / variant.name
    try:
        weights = read_manifest(folder)["weights"]
    except Sam2OnnxError:
        weights = {}
    if not (weights.get("source") == "random" and weights.get("seed") == 0):
        print(f"[bench] exporting {variant.name} (random weights, seed 0) ...", flush=True)
        export_variant(variant, out, seed=0, force=True)
    return folder


def prepare(args):
    """``(variant, folder, photo)`` for a torch-vs-onnxruntime benchmark: the seed-0 export of
    ``args.variant`` under ``args.out``, torch set to ``args.threads``, the benchmark photo."""
    import torch

    from exporter.variants import resolve

    variant = resolve(args.variant)
    folder = seed0_export(variant, args.out)
    torch.set_num_threads(args.threads)
    return variant, folder, bench_photo()


def describe(info: dict) -> str:
    from exporter.cpu import short

    return f"{info['date']} on {short(info)}, {info['cores']} cores, {info['memory_gib']} GiB"


def update_readme(marker: str, text: str) -> Path:
    """Replace what lies between ``<!-- bench:MARKER:start -->`` and ``...:end -->`` in README.md."""
    readme = ROOT / "README.md"
    pattern = re.compile(rf"(<!-- bench:{marker}:start -->\n).*?(<!-- bench:{marker}:end -->)", re.S)
    old = readme.read_text()
    if not pattern.search(old):
        raise SystemExit(f"README.md has no <!-- bench:{marker}:start/end --> markers")
    readme.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), old))
    return readme


def publish(out: Path, json_name: str, data: dict, marker: str, text: str, readme: bool = True) -> None:
    """Write the results JSON into ``out``, print the table, and put it into the README."""
    out.mkdir(parents=True, exist_ok=True)
    (out / json_name).write_text(json.dumps(data, indent=2) + "\n")
    print("\n" + text)
    if readme:
        print(f"[bench] table written to {update_readme(marker, text)}")
