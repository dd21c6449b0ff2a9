"""sha256 of files, streamed. Standard library only, so every layer (runtime included) may use it."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def hash_file(path: Path, h=None):
    """Feed ``path``'s bytes into ``h`` (a new sha256 if None) and return it, for continued hashing."""
    h = h if h is not None else hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h


def sha256_file(path: Path) -> str:
    return hash_file(path).hexdigest()
