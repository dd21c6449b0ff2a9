"""Benchmark: ``sam2-onnx bench`` for several variants, one table in docs/performance.md.

The entry point of ``exporter.bench.variants`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.variants import main

if __name__ == "__main__":
    sys.exit(main())
