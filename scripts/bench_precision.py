"""Benchmark and parity table per precision: FP32, FP16 and INT8 artifacts, one run.

The entry point of ``exporter.bench.precisions`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.precisions import main

if __name__ == "__main__":
    sys.exit(main())
