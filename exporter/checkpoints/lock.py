"""``checkpoints.lock``: where each official checkpoint lives and what its bytes must be.

TOML, one table per variant::

    [sam2.1_hiera_tiny]   # quoted in the file because of the dot
    url = "https://.../sam2.1_hiera_tiny.pt"
    filename = "sam2.1_hiera_tiny.pt"
    bytes = 0             # 0 = not pinned yet
    sha256 = ""           # "" = not pinned yet

An entry without a digest is *unpinned*: ``fetch`` refuses it unless ``--pin`` records the
digest it computed. Writing goes through :func:`write_lock`, which emits the canonical form
atomically, so a pin never leaves a half-written lock behind.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.checkout import ROOT
from ..core.errors import LockError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
HEADER = """\
# Official SAM 1, SAM 2 and SAM 2.1 checkpoints: URL, file name, size in bytes and sha256 per variant.
# bytes = 0 and sha256 = "" mean "not pinned yet": `sam2-onnx fetch VARIANT --pin` downloads
# the file and records what it got here; an unpinned entry is refused without --pin.
# Written by exporter/checkpoints/lock.py (canonical form); edit values, keep the layout.
"""


@dataclass(frozen=True)
class LockEntry:
    """One checkpoint: ``bytes == 0`` / ``sha256 == ""`` mean unknown."""

    variant: str
    url: str
    filename: str
    bytes: int = 0
    sha256: str = ""

    @property
    def pinned(self) -> bool:
        return bool(self.sha256)


def default_lock_path() -> Path:
    """``checkpoints.lock`` at the repository root."""
    return ROOT / "checkpoints.lock"


def read_lock(path: Path | None = None) -> dict[str, LockEntry]:
    """Parse and validate the lock; every problem names the file and the entry."""
    path = Path(path or default_lock_path())
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise LockError(f"{path}: lock file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: not valid TOML ({exc})") from None
    entries = {}
    for variant, table in data.items():
        if not isinstance(table, dict):
            raise LockError(f"{path}: [{variant}] must be a table")
        missing = [k for k in ("url", "filename", "bytes", "sha256") if k not in table]
        if missing:
            raise LockError(f"{path}: [{variant}] lacks {', '.join(missing)}")
        entry = LockEntry(
            variant, str(table["url"]), str(table["filename"]), table["bytes"], str(table["sha256"]).lower()
        )
        if not isinstance(entry.bytes, int) or entry.bytes < 0:
            raise LockError(f"{path}: [{variant}] bytes must be a non-negative integer")
        if entry.sha256 and not _SHA256.match(entry.sha256):
            raise LockError(f"{path}: [{variant}] sha256 must be 64 hex digits or empty")
        if "/" in entry.filename or not entry.filename:
            raise LockError(f"{path}: [{variant}] filename must be a bare file name")
        entries[variant] = entry
    return entries


def lock_entry(variant: str, path: Path | None = None) -> LockEntry:
    entries = read_lock(path)
    if variant not in entries:
        raise LockError(f"{path or default_lock_path()}: no entry for {variant!r}")
    return entries[variant]


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_lock(entries: dict[str, LockEntry]) -> str:
    """Canonical TOML text for ``entries`` (stable order: as given)."""
    parts = [HEADER]
    for e in entries.values():
        parts.append(
            f"\n[{_quote(e.variant)}]\n"
            f"url = {_quote(e.url)}\n"
            f"filename = {_quote(e.filename)}\n"
            f"bytes = {e.bytes}\n"
            f"sha256 = {_quote(e.sha256)}\n"
        )
    return "".join(parts)


def write_lock(entries: dict[str, LockEntry], path: Path | None = None) -> None:
    """Atomically replace the lock file with the canonical rendering of ``entries``."""
    path = Path(path or default_lock_path())
    fd, tmp = tempfile.mkstemp(prefix=".checkpoints.lock.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(render_lock(entries))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pin(variant: str, size: int, sha256: str, path: Path | None = None) -> LockEntry:
    """Record a computed size and digest for ``variant`` in the lock; returns the new entry."""
    entries = read_lock(path)
    entries[variant] = replace(entries[variant], bytes=size, sha256=sha256)
    write_lock(entries, path)
    return entries[variant]
