"""Parity over many random-weight seeds: does every export pass, at every precision, with an

The entry point of ``exporter.bench.parity_seeds`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.parity_seeds import main

if __name__ == "__main__":
    sys.exit(main())
