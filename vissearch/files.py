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


def write_stream(path: str | Path, stream) -> Path:
    """Copy a readable binary stream into ``path``, whole or not at all."""
    import shutil

    def copy(tmp: str) -> None:
        with open(tmp, "wb") as f:
            shutil.copyfileobj(stream, f, 1 << 20)

    return atomic_write(path, copy)


MAX_PATH = 4096  # bytes of a whole path (Linux PATH_MAX)
MAX_PART = 255  # bytes of one file or folder name (NAME_MAX)


def check_path(value: object, key: str) -> str:
    """A path a user gave under ``key``, checked for what the filesystem accepts: a string,
    no NUL, at most 4096 bytes, no name over 255 bytes. Returns it; a problem is one line."""
    from vissearch.errors import UserError, shorten

    if not isinstance(value, str) or not value:
        raise UserError(f"{key}: expected a path, got {shorten(value)}")
    if "\0" in value:
        raise UserError(f"{key}: a path may not hold a NUL character, got {shorten(value)}")
    encoded = value.encode("utf-8", "surrogateescape")
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in Path(value).parts),
                  default=0)  # "." (the working folder) has no parts
    if len(encoded) > MAX_PATH or longest > MAX_PART:
        raise UserError(f"{key}: path too long ({len(encoded)} bytes, longest name {longest}; "
                        f"at most {MAX_PATH} and {MAX_PART}): {shorten(value)}")
    return value


def check_writable(value: str | Path, key: str, folder: bool) -> Path:
    """A path a command will write (a folder if ``folder``, else a file), checked before any
    work and without making anything: a folder is not an existing file, a file is not an
    existing folder, and the nearest existing folder on the way can be written (a probe file
    is made there and removed). Returns it; a problem is one line."""
    from vissearch.errors import UserError, shorten

    path = Path(check_path(str(value), key))
    shown = f"{key} {shorten(str(path))}"
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{shown}: that is a file; give a folder")
    if not folder and path.is_dir():
        raise UserError(f"{shown}: that is a folder; give a file's path, "
                        f"e.g. {shorten(str(path / 'recipe.yaml'))}")
    if not folder and path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{shown}: cannot write that file (read-only)")
    where = path if folder else path.parent
    base = next((p for p in (where, *where.parents) if p.exists()), Path.cwd())
    if not base.is_dir():
        raise UserError(f"{shown}: {shorten(str(base))} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{shown}: cannot write in {shorten(str(base))} "
                        f"({err.strerror or type(err).__name__})") from None
    return path


def find(name: str, bases: tuple[Path | None, ...] = (), shipped: Path | None = None
         ) -> Path | None:
    """The file a config names: a shipped one by its bare name (``shipped/NAME.yaml``), else the
    path as given (from the working folder), else under each of ``bases`` in turn (the config's
    own folder, ...); None when there is none. Paths past MAX_PATH are not looked up."""
    p = Path(name)
    if shipped is not None and "/" not in name and p.suffix == "":
        own = shipped / f"{name}.yaml"
        if own.is_file():
            return own
    for candidate in (p, *(base / p for base in bases if base is not None)):
        if len(str(candidate)) <= MAX_PATH and candidate.is_file():
            return candidate
    return None
