"""Which graph files a browser runs (onnxruntime-web in headless Chromium), at every precision.

The entry point of ``exporter.release.web_files`` (its docstring and ``--help`` say more)."""

import sys

from exporter.release.web_files import main

if __name__ == "__main__":
    sys.exit(main())
