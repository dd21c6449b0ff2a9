"""Shared by the job scripts (main_job.py, release_job.py): named steps, timed, stopped at the
first failure, and a summary table at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from exporter.core.checkout import ROOT
from exporter.core.errors import Sam2OnnxError


def rel(path: Path) -> Path:
    """``path`` relative to the repository when it lies inside it (shorter summaries)."""
    path = Path(path)
    return path.relative_to(ROOT) if path.is_absolute() and path.is_relative_to(ROOT) else path


@dataclass
class Step:
    name: str
    status: str = "failed"  # ok | skipped | failed
    seconds: float = 0.0
    detail: str = ""
    exit_code: int = 0


@dataclass
class Job:
    """``job.run(name, fn)`` runs one step: ``fn()`` returns its detail line, or a
    ``("skipped", detail)`` pair when the step found its work already done; a
    :class:`Sam2OnnxError` marks it failed (with that error's exit code)."""

    tag: str
    steps: list[Step] = field(default_factory=list)

    def run(self, name: str, fn) -> bool:
        step = Step(name)
        self.steps.append(step)
        t0 = time.perf_counter()
        print(f"[{self.tag}] {name} ...", flush=True)
        try:
            out = fn()
            step.status, step.detail = out if isinstance(out, tuple) else ("ok", out)
        except Sam2OnnxError as exc:
            step.status, step.detail, step.exit_code = "failed", str(exc), exc.exit_code
        step.seconds = time.perf_counter() - t0
        return step.status != "failed"

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status == "failed"]

    def summary(self, title: str) -> None:
        width = max((len(s.name) for s in self.steps), default=10)
        print(f"\n{title}")
        print("-" * 78)
        for s in self.steps:
            print(f"{s.name.ljust(width)}  {s.status:<7}  {s.seconds:6.1f}s  {s.detail}")
        print("-" * 78)
        print(f"verdict: {'FAILED' if self.failed else 'PASSED'}")
