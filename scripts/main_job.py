"""The main job behind ``scripts/main.sh``: random weights -> export (FP32, FP16, INT8) -> parity of

The entry point of ``exporter.jobs.main`` (its docstring and ``--help`` say more)."""

import sys

from exporter.jobs.main import main

if __name__ == "__main__":
    sys.exit(main())
