"""The docs' table of which graph files a browser runs: a seeded random-weights export of one
variant at every precision, with the ``.ort`` copies a release makes, every file checked in
headless Chromium as ``sam2-onnx release`` checks it (browser_check.py), on wasm and, for the
decoders, on WebGPU (Chromium's software adapter where there is no GPU: it did not finish the
tiny encoder in 15 minutes, so the encoders are not run on it).

    python scripts/web_files.py [--variant tiny] [--precision fp32,fp16,int8] [--no-webgpu] [--no-docs]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from ..bench.tables import describe, machine, publish
from ..core.checkout import ROOT
from ..core.manifest import MANIFEST_FILE, listed_files, read_manifest
from ..core.variants import resolve
from ..export.current import ensure_export
from ..precision import parse_precisions
from .browser_check import check_in_browser
from .build import convert_to_ort
from .model_card import browser_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--precision", default="fp32,fp16,int8")
    ap.add_argument("--no-webgpu", action="store_true", help="wasm only")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench")
    ap.add_argument("--no-docs", action="store_true", help="print the table, do not write it into the docs")
    args = ap.parse_args(argv)
    variant = resolve(args.variant)
    folder = ensure_export(variant, args.out, precisions=parse_precisions(args.precision))
    manifest = read_manifest(folder)
    eps = ("wasm",) if args.no_webgpu else ("wasm", "webgpu")
    with tempfile.TemporaryDirectory(prefix="web-files-") as tmp:
        work = Path(tmp)
        for name in [*listed_files(manifest), MANIFEST_FILE]:
            shutil.copy2(folder / name, work / name)
        print(f"[bench] converting {len(manifest['files'])} graphs to ORT format", flush=True)
        convert_to_ort([work / name for name in manifest["files"]], work)
        record = check_in_browser(
            work, manifest, eps, lambda m: print(f"[bench] {m}", flush=True), roles={"webgpu": ("decoder",)}
        )
    record |= {"machine": machine(), "variant": variant.name}
    publish(args.out, "web-files.json", record, "web-files", render(record), docs=not args.no_docs)
    return 0


def render(record: dict) -> str:
    """The docs' text for a ``web-files.json`` record."""
    gpu = (
        f" WebGPU: the decoders only, on the adapter `{record.get('adapter')}`."
        if "webgpu" in record["eps"]
        else " WebGPU not checked."
    )
    return (
        f"Measured {describe(record['machine'])} by `scripts/web_files.py`: {record['variant']} (random weights "
        f"seed 0), every graph file in onnxruntime-web {record['onnxruntime_web']}, headless {record['browser']}, "
        f"as `sam2-onnx release` checks it.{gpu}\n\n" + browser_table(record) + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
