"""Benchmark: the browser page (onnxruntime-web in headless Chromium) against the Python runtime.

The entry point of ``exporter.bench.web_speed`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.web_speed import main

if __name__ == "__main__":
    sys.exit(main())
