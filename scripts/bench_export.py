"""Benchmark: export time and peak RSS per variant, written to JSON and the table in docs/performance.md.

The entry point of ``exporter.bench.export_cost`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.export_cost import main

if __name__ == "__main__":
    sys.exit(main())
