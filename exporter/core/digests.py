"""sha256 of files, streamed, and the ``SHA256SUMS`` of release folders. Standard library
only, so every layer (runtime and web included) may use it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import IntegrityError
from .staging import write_text_atomic

CHUNK = 1 << 20
SUMS_FILE = "SHA256SUMS"  # a release folder's checksums, in sha256sum format


def hash_file(path: Path, h=None):
    """Feed ``path``'s bytes into ``h`` (a new sha256 if None) and return it, for continued hashing."""
    h = h if h is not None else hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h


def sha256_file(path: Path) -> str:
    return hash_file(path).hexdigest()


def write_sums(folder: Path) -> Path:
    """``SHA256SUMS`` over every other file in ``folder``, in ``sha256sum`` format."""
    lines = [f"{sha256_file(p)}  {p.name}\n" for p in sorted(folder.iterdir()) if p.is_file() and p.name != SUMS_FILE]
    path = folder / SUMS_FILE
    write_text_atomic(path, "".join(lines))
    return path


def verify_release(folder: Path) -> list[str]:
    """Check every line of ``folder/SHA256SUMS`` (as ``sha256sum -c`` would) and that it lists
    every file; returns the file names, IntegrityError names the first problem."""
    folder = Path(folder)
    sums = folder / SUMS_FILE
    if not sums.is_file():
        raise IntegrityError(f"{sums}: missing; is {folder} a folder written by `sam2-onnx release`?")
    listed = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and p.name != SUMS_FILE}
    if on_disk != set(listed):
        extra, gone = sorted(on_disk - set(listed)), sorted(set(listed) - on_disk)
        raise IntegrityError(
            f"{folder}: files differ from {SUMS_FILE} (unlisted: {extra or 'none'}, missing: {gone or 'none'})"
        )
    for name, digest in listed.items():
        if sha256_file(folder / name) != digest:
            raise IntegrityError(f"{folder / name}: sha256 differs from {SUMS_FILE}")
    return sorted(listed)
