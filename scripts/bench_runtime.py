"""Benchmark: the ONNX Runtime predictor against the official torch predictor, one run.

The entry point of ``exporter.bench.runtime_speed`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.runtime_speed import main

if __name__ == "__main__":
    sys.exit(main())
