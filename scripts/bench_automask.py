"""Benchmark: our automatic mask generator (onnxruntime) against the official one (torch), one run.

The entry point of ``exporter.bench.automask_speed`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.automask_speed import main

if __name__ == "__main__":
    sys.exit(main())
