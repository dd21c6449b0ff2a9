"""Shared by the benchmark scripts: machine description, timing, the benchmark photo, and the
tables they write into the docs (between ``<!-- bench:NAME:start/end -->`` markers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from exporter.bench.worker import timed as worker_timed
from exporter.core.checkout import ROOT
from exporter.core.cpu import machine  # noqa: F401  (the benchmarks' machine description)


def timed(fn, runs: int) -> dict:
    """One warm-up call, then ``runs`` timed calls: median / min / max in ms."""
    return worker_timed(fn, 1, runs)


def bench_photo():
    """The 1800x1200 benchmark photo: scikit-image's "coffee" (600x400), upscaled bicubic."""
    import numpy as np
    import skimage.data
    from PIL import Image

    return np.array(Image.fromarray(skimage.data.coffee()).resize((1800, 1200), Image.BICUBIC))


def prepare(args):
    """``(variant, folder, photo)`` for a torch-vs-onnxruntime benchmark: the seed-0 export of
    ``args.variant`` under ``args.out``, torch set to ``args.threads``, the benchmark photo."""
    import torch

    from exporter.core.variants import resolve
    from exporter.export.current import ensure_export

    variant = resolve(args.variant)
    folder = ensure_export(variant, args.out)
    torch.set_num_threads(args.threads)
    return variant, folder, bench_photo()


def describe(info: dict) -> str:
    from exporter.core.cpu import short

    return f"{info['date']} on {short(info)}, {info['cores']} cores, {info['memory_gib']} GiB"


def docs_with(marker: str) -> Path:
    """The one page (README.md or docs/*.md) holding ``<!-- bench:MARKER:start/end -->``."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = [p for p in pages if p.is_file() and f"<!-- bench:{marker}:start -->" in p.read_text()]
    if len(found) != 1:
        raise SystemExit(
            f"<!-- bench:{marker}:start/end --> markers are in {len(found)} of README.md and docs/*.md "
            f"({', '.join(str(p.relative_to(ROOT)) for p in found) or 'none'}); expected exactly one"
        )
    return found[0]


def update_docs(marker: str, text: str) -> Path:
    """Replace what lies between the ``bench:MARKER`` start and end markers on their page."""
    page = docs_with(marker)
    pattern = re.compile(rf"(<!-- bench:{marker}:start -->\n).*?(<!-- bench:{marker}:end -->)", re.S)
    old = page.read_text()
    if not pattern.search(old):
        raise SystemExit(f"{page}: <!-- bench:{marker}:start --> has no matching end marker")
    page.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), old))
    return page


def publish(out: Path, json_name: str, data: dict, marker: str, text: str, docs: bool = True) -> None:
    """Write the results JSON into ``out``, print the table, and put it into its docs page."""
    out.mkdir(parents=True, exist_ok=True)
    (out / json_name).write_text(json.dumps(data, indent=2) + "\n")
    print("\n" + text)
    if docs:
        print(f"[bench] table written to {update_docs(marker, text)}")
