"""docs/design.md's rooms and doors, checked: every import in every module of the package (those
inside functions too) goes only to the rooms its room may use, and never to a third-party
package its room must stay clear of."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "exporter"


def _rooms() -> dict[str, dict[str, set[str]]]:
    """``{room: {"may": {...}, "not": {...}}}`` from the table between the rooms markers."""
    text = (ROOT / "docs" / "design.md").read_text()
    table = re.search(r"<!-- rooms:start -->\n(.*?)<!-- rooms:end -->", text, re.S).group(1)
    rooms = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            names = lambda cell: {n.strip() for n in cell.split(",") if n.strip() not in ("", "-")}
            rooms[cells[0].strip("`")] = {"may": names(cells[2]), "not": names(cells[3])}
    return rooms


def _room_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    package = rel[:-1] if rel[-1] != "__init__" else rel[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
                # `from . import x`: x may be a module of that package
                found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_table_names_every_room_of_the_package():
    rooms = _rooms()
    present = {_room_of(p) for p in MODULES} - {"__init__"}
    assert present == set(rooms), f"rooms in the package {sorted(present)} vs docs/design.md {sorted(rooms)}"
    for room, doors in rooms.items():
        assert doors["may"] <= set(rooms), f"{room} may import unknown rooms {doors['may'] - set(rooms)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_import_goes_through_a_door(path):
    rooms = _rooms()
    room = _room_of(path)
    if room == "__init__":
        return
    wrong = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        if top == "exporter":
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else "exporter"
            if target not in (room, "__init__") and target not in rooms[room]["may"] | {"exporter"}:
                wrong.append(f"line {line}: {module} ({target} is not a door of {room})")
        elif top in rooms[room]["not"]:
            wrong.append(f"line {line}: {module} ({room} must not import {top})")
    assert not wrong, f"{path.relative_to(ROOT)}: " + "; ".join(wrong)


def test_a_door_that_is_not_in_the_table_is_caught(tmp_path):
    """The check itself: a module importing past its doors is reported (so a pass means something)."""
    rooms = _rooms()
    assert "torch" in rooms["runtime"]["not"] and "export" not in rooms["runtime"]["may"]
    fake = PACKAGE / "runtime" / "_door_probe.py"
    fake.write_text("def f():\n    import torch\n    from ..export.pipeline import export_variant\n")
    try:
        with pytest.raises(AssertionError, match=r"line 2: torch .*line 3: exporter\.export\.pipeline"):
            test_every_import_goes_through_a_door(fake)
    finally:
        fake.unlink()
