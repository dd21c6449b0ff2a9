"""Errors the toolkit raises for things a user can fix.

Each carries a one-line message (what, which file, what to do) and the exit code the CLI
uses, so scripts can tell an integrity failure from a network failure without parsing text.
Anything that is not a ``Sam2OnnxError`` is a bug and keeps its traceback.
"""

from __future__ import annotations

import os


class Sam2OnnxError(Exception):
    """Base class: a clear one-line failure the user can act on."""

    exit_code = 1


class ConfigError(Sam2OnnxError):
    """A variant name or a file under configs/ is wrong."""


class LockError(Sam2OnnxError):
    """checkpoints.lock is missing, malformed or lacks an entry."""


class CheckpointError(Sam2OnnxError):
    """A file is not a loadable SAM 2 checkpoint, or belongs to another variant."""


class IntegrityError(Sam2OnnxError):
    """Bytes on disk or on the wire do not match the recorded size or sha256."""

    exit_code = 3


class DownloadError(Sam2OnnxError):
    """The server could not be reached or refused the request."""

    exit_code = 4


class ExportError(Sam2OnnxError):
    """Export produced a graph that fails its checks, or was given impossible options."""


class OutputError(Sam2OnnxError):
    """An output location cannot be written."""


class ManifestError(Sam2OnnxError):
    """A model folder without a readable, well-formed manifest."""


class InputError(Sam2OnnxError, ValueError):
    """A bad image, prompt or option given to the runtime (also a ValueError for API users)."""


class NotReadyError(Sam2OnnxError, RuntimeError):
    """A prediction was asked for before an image was set."""


class ParityError(Sam2OnnxError):
    """Parity cannot run as asked (different weights, unknown images, prompt kinds, precisions)."""


class ParityFailed(Sam2OnnxError):
    """Parity ran and at least one case missed its gate."""

    exit_code = 5


class SetupError(Sam2OnnxError):
    """Something the command needs outside Python is not installed (onnxruntime-web, a browser)."""


class OutputExistsError(Sam2OnnxError):
    """Refusing to overwrite something the user already has (use --force)."""


def one_line(exc: BaseException, limit: int = 200, with_type: bool = True) -> str:
    """The first line of an exception's message (a library's multi-line text), for one-line errors."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:limit] if lines else ""
    if not with_type:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def refuse_overwrite(path, force: bool) -> None:
    """Raise OutputExistsError if ``path`` exists and ``force`` is not set."""
    if not force and os.path.lexists(path):
        raise OutputExistsError(f"{path} already exists; use --force to overwrite it")


class ReleaseRefused(Sam2OnnxError):
    """Artifacts that must not be released: random weights, missing or failed parity."""

    exit_code = 6
