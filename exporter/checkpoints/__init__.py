"""Official checkpoints: the lock (``lock``), downloading (``fetch``) and loading (``loading``).

``fetch`` and ``lock`` need only the standard library; ``loading`` imports torch and sam2,
so it is imported explicitly by the code that needs it rather than from here.
"""

from .lock import LockEntry, default_lock_path, lock_entry, pin, read_lock, write_lock

__all__ = ["LockEntry", "default_lock_path", "lock_entry", "pin", "read_lock", "write_lock"]
