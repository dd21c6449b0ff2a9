"""Print pinned requirement lines from pyproject.toml for the bootstrap.

Usage: python scripts/pins.py installer | build-first | extras | emulated
The pins live only in pyproject.toml; this prints them so the shell bootstrap never
repeats a version number.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0].lower()


def main(what: str) -> int:
    data = tomllib.loads(PYPROJECT.read_text())
    boot = data["tool"]["sam2-onnx"]["bootstrap"]
    project = data["project"]
    every = list(project["dependencies"])
    for group in project["optional-dependencies"].values():
        every += group
    pinned = {_name(r): r for r in every}
    if what == "installer":
        print(boot["installer"])
    elif what == "build-first":
        # a bare name takes its pin from the dependency lists above
        for entry in boot["build-first"]:
            print(entry if "==" in entry else pinned[_name(entry)])
    elif what == "extras":
        print(",".join(project["optional-dependencies"]))
    elif what == "emulated":
        # what the emulated-CPU workers import: numpy + onnxruntime, at the pinned versions
        for name in ("numpy", "onnxruntime"):
            print(pinned[name])
    else:
        print(f"unknown query {what!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
