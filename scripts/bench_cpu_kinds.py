"""The same graphs on each kind of CPU this machine can run: how far apart are their outputs?

The entry point of ``exporter.bench.cpu_kinds`` (its docstring and ``--help`` say more)."""

import sys

from exporter.bench.cpu_kinds import main

if __name__ == "__main__":
    sys.exit(main())
