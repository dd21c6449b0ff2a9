"""Build an output folder out of sight, then rename it into place in one step.

A staging folder lives next to the final one (same filesystem, so ``os.replace`` is atomic)
and is named ``.<name>.<pid>.<random>.partial``: a failed or interrupted export leaves nothing
at the final path, and the next export removes staging folders whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError, OutputExistsError


def staging_dir(out: Path, name: str) -> Path:
    """A fresh hidden folder in ``out`` for ``out/name``; OutputError if ``out`` is not writable."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(f".{name}.*.partial"):
            pid = stale.name[len(name) + 2 :].split(".")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", suffix=".partial", dir=out))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would follow the folder to its final name
        return staging
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(path: Path) -> None:
    """Give ``path`` the usual file permissions (0666 minus the umask): mkstemp and onnx's
    external-data writer make private 0600 files."""
    os.chmod(path, 0o666 & ~_umask())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def publish(staging: Path, final: Path, force: bool) -> None:
    """Rename the finished ``staging`` folder to ``final``; an existing ``final`` needs ``force``.

    The old folder is moved aside first and deleted only after the new one is in place.
    """
    if os.path.lexists(final):
        if not force:  # appeared while we were working
            raise OutputExistsError(f"{final} already exists; use --force to overwrite it")
        old = staging.with_name(staging.name.replace(".partial", ".old"))
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        os.replace(staging, final)


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write ``path`` (text, or bytes) through a temporary file in the same folder and rename
    it into place.

    The file gets the usual permissions (0666 minus the umask), not mkstemp's private 0600.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged(out: Path, force: bool):
    """``with staged(out, force) as staging:`` write into ``staging``; on success it becomes
    ``out`` (replacing it only with ``force``), on any failure it is removed."""
    out = Path(out)
    staging = staging_dir(out.parent, out.name)
    try:
        yield staging
        publish(staging, out, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
