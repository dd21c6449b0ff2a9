"""What a CI release job runs (behind ``scripts/release.sh``), per variant:

The entry point of ``exporter.release.job`` (its docstring and ``--help`` say more)."""

import sys

from exporter.release.job import main

if __name__ == "__main__":
    sys.exit(main())
