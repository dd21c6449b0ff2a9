"""Shared by the benchmark scripts: machine description and README table replacement."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}


def timed(fn, runs: int) -> dict:
    """One warm-up call, then ``runs`` timed calls: median / min / max in ms."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
            "max_ms": round(max(times), 2), "runs": runs}


def describe(info: dict) -> str:
    return f"{info['date']} on {info['cpu']} ({info['cores']} cores, {info['memory_gib']} GiB)"


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
