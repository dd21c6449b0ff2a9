"""The repository checkout the package runs from: ``configs/``, ``checkpoints.lock``, the
default ``artifacts/`` and ``releases/`` folders and the docs the benchmarks write live there.
Installed from a wheel there is no checkout; every path built on ROOT can be overridden."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
