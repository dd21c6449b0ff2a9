"""Run the parity suite's plan on exported artifacts and write the parity table in docs/parity.md.

The entry point of ``exporter.bench.parity_table`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.parity_table import main

if __name__ == "__main__":
    sys.exit(main())
