"""Files that appear whole or not at all. No TensorFlow.

Every file vissearch writes for others to read (PNGs, image artifacts, converted weights) is
written to a temporary name in the same folder, synced, given the usual permissions and renamed
into place, so a reader never sees half a file and a killed process leaves at most a stray
``.tmp`` file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def publish(tmp: str | Path, path: str | Path) -> None:
    """Give a finished temporary file the usual permissions (0666 less the umask) and rename it
    into place; ``mkstemp`` files start owner-only."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def atomic_write(path: str | Path, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then publish it as ``path``.

    ``suffix`` ends the temporary name, for writers that insist on an extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
