"""``sam2-onnx bench``: what each artifact costs: latency, bytes, peak memory.

For torch eager FP32 (the official predictor's model calls) and onnxruntime at every precision
the folder holds, in one run with one thread count: encoder and decoder latency (warm-up,
then min / median / max), load time, file bytes, and the peak RSS of a process that loads that
engine and runs it. Each engine runs in its own process (:mod:`exporter.bench.worker`), one
after the other, so one engine's memory or thread pool cannot slow or inflate the next.

``rounds`` > 1 repeats that sequence (torch, fp32, fp16, ..., torch, fp32, ...), each time in
fresh processes, and pools each engine's calls over the rounds. On a shared VM a process's
speed can drift by 1.5x for minutes at a time (measured here: the same decoder graph ran at
22-26 ms in some processes and 35-40 ms in others, for each process's whole life;
docs/performance.md, "The machine and its drift"); alternating the engines puts every engine through the same drift, so their ratio is
steadier than one pass's.

Results go to ``bench.json`` (schema below) and ``bench.png`` (a bar chart) next to the
artifacts. The torch engine uses seeded random weights of the same architecture: latency does
not depend on the weights' values.

``bench.json``::

    {"schema": "sam2-onnx/bench", "schema_version": 2, "variant": ..., "weights": {...},
     "artifacts_sha256": {file: sha256}, "machine": {...}, "threads": T, "warmup": W,
     "rounds": R, "settings": {"runs", "decoder_runs", "warmup", "threads", "rounds"},
     "image": {"name": ..., "height": H, "width": W}, "prompt": "...",
     "results": [{"engine": "torch"|"onnxruntime", "precision": "fp32"|"fp16"|"int8",
                  "encoder": {"min_ms", "median_ms", "max_ms", "runs", "round_medians_ms"},
                  "decoder": {...}, "load_s": s (median over rounds), "peak_rss_mb": MB (max),
                  "bytes": {"encoder": n, "decoder": n} | null,
                  "vs_torch": {"encoder": ratio, "decoder": ratio}}, ...]}

``runs`` in a result counts the calls pooled over all rounds.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks.sample_inputs import SAMPLE_PHOTO
from ..core.cpu import machine
from ..core.errors import InputError, OutputError, refuse_overwrite
from ..core.manifest import graph_bytes, manifest_profile, read_manifest, verify_files
from ..core.staging import write_text_atomic
from ..runtime.inputs import read_image
from ..runtime.sam1_transforms import preprocess as sam1_preprocess
from ..runtime.sessions import graph_file
from ..runtime.transforms import preprocess
from .worker import summarize

SCHEMA = "sam2-onnx/bench"
SCHEMA_VERSION = 2
GRAPHS = ("encoder", "decoder")
BENCH_JSON, BENCH_PNG = "bench.json", "bench.png"
PROMPT = "one foreground click at the centre, multimask output (3 masks), no mask input"


@dataclass(frozen=True)
class Engine:
    engine: str  # "torch" | "onnxruntime"
    precision: str

    @property
    def label(self) -> str:
        return "torch eager fp32" if self.engine == "torch" else f"onnxruntime {self.precision}"


def engines(manifest: dict, torch: bool = True) -> list[Engine]:
    """torch (unless disabled), then onnxruntime at each precision the manifest lists."""
    precisions = list(manifest.get("precisions") or {"fp32": {}})
    return ([Engine("torch", "fp32")] if torch else []) + [Engine("onnxruntime", p) for p in precisions]


def _worker(job: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "exporter.bench.worker", json.dumps(job)],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    lines = proc.stdout.strip().splitlines()
    try:
        out = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        how = (
            f"was killed by {signal.Signals(-proc.returncode).name}"  # SIGKILL: most often the OOM killer
            + (" (out of memory?)" if proc.returncode == -signal.SIGKILL else "")
            if proc.returncode < 0
            else f"failed (exit {proc.returncode})"
        )
        raise OutputError(f"bench of {job['engine']} {job['precision']} {how}: {tail}") from None
    if "error" in out:
        raise InputError(f"bench of {job['engine']} {job['precision']}: {out['error']}")
    return out


def bench_settings(runs: int, decoder_runs: int | None, warmup: int, threads: int | None, rounds: int) -> dict:
    """What run_bench measures with, defaults filled in (decoder runs 5x ``runs``, all cores):
    recorded in bench.json, so a later job can tell whether the same bench was asked for."""
    return {
        "runs": runs,
        "decoder_runs": decoder_runs or 5 * runs,
        "warmup": warmup,
        "threads": threads or os.cpu_count(),
        "rounds": rounds,
    }


def _merge(outs: list[dict]) -> dict:
    """One engine's worker outputs (one per round) as one result: calls pooled over the rounds."""
    merged = {
        g: summarize([t for o in outs for t in o[f"{g}_ms"]])
        | {"round_medians_ms": [round(statistics.median(o[f"{g}_ms"]), 3) for o in outs]}
        for g in GRAPHS
    }
    return merged | {
        "load_s": round(statistics.median(o["load_s"] for o in outs), 2),
        "peak_rss_mb": max(o["peak_rss_mb"] for o in outs),
        "torch_imported": any(o["torch_imported"] for o in outs),
    }


def run_bench(
    model_dir: Path,
    runs: int = 10,
    threads: int | None = None,
    warmup: int = 2,
    decoder_runs: int | None = None,
    image: Path | None = None,
    torch: bool = True,
    rounds: int = 1,
    progress=None,
) -> dict:
    """Benchmark every engine on ``model_dir``; returns the ``bench.json`` dict (not written).

    ``runs`` encoder calls and ``decoder_runs`` (default ``5 * runs``) decoder calls per engine
    and round, after ``warmup`` calls of each; ``rounds`` passes over the engines, alternating
    them; ``threads`` defaults to all cores; ``image`` to the bundled photo.
    ``progress(label)`` is called before each engine process starts.
    """
    model_dir = Path(model_dir)
    if runs < 1 or warmup < 0 or rounds < 1 or (decoder_runs is not None and decoder_runs < 1):
        raise InputError("runs, decoder runs and rounds must be at least 1, warm-up at least 0")
    settings = bench_settings(runs, decoder_runs, warmup, threads, rounds)
    threads = settings["threads"]
    if threads < 1:
        raise InputError(f"threads must be at least 1, not {threads}")
    manifest = read_manifest(model_dir)
    verify_files(model_dir, manifest)
    image_path = Path(image) if image else SAMPLE_PHOTO
    rgb = read_image(image_path)
    todo = engines(manifest, torch)
    outs: dict[Engine, list[dict]] = {eng: [] for eng in todo}
    with tempfile.TemporaryDirectory(prefix="sam2-onnx-bench.") as tmp:
        sam1 = manifest_profile(manifest).family == "sam1"  # SamPredictor's padded input, its original size
        np.save(Path(tmp) / "image.npy", sam1_preprocess(rgb)[0] if sam1 else preprocess(rgb))
        for i in range(rounds):
            for eng in todo:
                if progress:
                    progress(eng.label if rounds == 1 else f"round {i + 1}/{rounds}: {eng.label}")
                outs[eng].append(
                    _worker(
                        {
                            "engine": eng.engine,
                            "precision": eng.precision,
                            "model_dir": str(model_dir.resolve()),
                            "variant": manifest["variant"]["name"],
                            "image": str(Path(tmp) / "image.npy"),
                            **settings,
                        }
                    )
                )
    results = []
    for eng in todo:
        files = None if eng.engine == "torch" else {role: graph_file(role, eng.precision, manifest) for role in GRAPHS}
        results.append(
            {
                "engine": eng.engine,
                "precision": eng.precision,
                **_merge(outs[eng]),
                "files": files,
                "bytes": files and {r: graph_bytes(manifest["files"][f]) for r, f in files.items()},
            }
        )
    base = next((r for r in results if r["engine"] == "torch"), None)
    for r in results:
        r["vs_torch"] = base and {g: round(r[g]["median_ms"] / base[g]["median_ms"], 3) for g in GRAPHS}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "variant": manifest["variant"]["name"],
        "weights": manifest["weights"],
        "artifacts_sha256": {name: e["sha256"] for name, e in manifest["files"].items()},
        "machine": machine(),
        "threads": threads,
        "warmup": warmup,
        "rounds": rounds,
        "settings": settings,
        "image": {"name": image_path.name, "height": rgb.shape[0], "width": rgb.shape[1]},
        "prompt": PROMPT,
        "note": "torch: the official predictor's model calls (set_image after preprocessing; _predict "
        "before upsampling) in eager FP32 with seeded random weights; onnxruntime: the exported "
        "graphs on CPUExecutionProvider. Same input tensor and prompt, same thread count.",
        "results": results,
    }


def current_bench(folder: Path, manifest: dict, settings: dict | None = None) -> dict | None:
    """``folder/bench.json`` if it is a readable bench report measured on exactly the files
    ``manifest`` lists now (and, given ``settings``, with those settings), else None."""
    try:
        bench = json.loads((Path(folder) / BENCH_JSON).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(bench, dict) or bench.get("schema") != SCHEMA:
        return None
    same_files = bench.get("artifacts_sha256") == {n: e["sha256"] for n, e in manifest["files"].items()}
    return bench if same_files and (settings is None or bench.get("settings") == settings) else None


def _ms(t: dict) -> str:
    return f"{t['min_ms']:.1f} / {t['median_ms']:.1f} / {t['max_ms']:.1f}"


def table(bench: dict) -> str:
    """Markdown table: one row per engine (times min / median / max ms, ratios of medians)."""
    rows = [
        "| engine | encoder ms (min / median / max) | decoder ms (min / median / max) "
        "| encoder vs torch | decoder vs torch | bytes (enc + dec) | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in bench["results"]:
        label = Engine(r["engine"], r["precision"]).label
        ratio = {g: f"{x:.2f}x" for g, x in (r["vs_torch"] or {}).items()}  # none without --torch
        size = f"{sum(r['bytes'].values()) / 1e6:.1f} MB" if r["bytes"] else "-"
        rows.append(
            f"| {label} | {_ms(r['encoder'])} | {_ms(r['decoder'])} | "
            f"{ratio.get('encoder', '-')} | {ratio.get('decoder', '-')} | "
            f"{size} | {r['peak_rss_mb'] / 1024:.2f} GB |"
        )
    return "\n".join(rows) + "\n"


def describe(bench: dict) -> str:
    from ..core.cpu import short as cpu_short

    m = bench["machine"]
    return (
        f"{bench['variant']}, {m['date']} on {cpu_short(m)}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{bench['threads']} threads, {bench['image']['width']}x{bench['image']['height']} "
        f"{bench['image']['name']}, {bench['results'][0]['encoder']['runs']} encoder / "
        f"{bench['results'][0]['decoder']['runs']} decoder runs after {bench['warmup']} warm-up"
        + (f", pooled over {bench['rounds']} alternating rounds" if bench.get("rounds", 1) > 1 else "")
    )


def save_bench(bench: dict, out: Path, force: bool = False) -> tuple[Path, Path]:
    """Write ``bench.json`` and ``bench.png`` into ``out`` (each atomically); existing files need ``force``."""
    from .chart import chart

    out = Path(out)
    paths = out / BENCH_JSON, out / BENCH_PNG
    for p in paths:
        refuse_overwrite(p, force)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(paths[0], json.dumps(bench, indent=2) + "\n")
    write_text_atomic(paths[1], chart(bench))
    return paths
