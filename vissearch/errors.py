"""The one exception type a user's mistake turns into.

The command line prints a :class:`UserError` as one line and exits with code 2; everything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Iterable

#: Set by the command line's Ctrl-C handler, which also raises KeyboardInterrupt. Python drops an
#: exception raised while it runs a weakref callback or a ``__del__`` ("Exception ignored in"),
#: and a Ctrl-C that lands there would be lost: a run checks this at every reporting window.
INTERRUPT = threading.Event()


class UserError(Exception):
    """A mistake the user can fix: a bad setting, a missing file, an unknown name."""


class StoreUnreachable(UserError):
    """The object store holding a study's images does not answer. No setting is at fault: a
    trial that meets it is put back to run again, never recorded as the settings' failure."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean: a, b?)"`` for the choices nearest to ``name``, or ``""``."""
    near = difflib.get_close_matches(str(name)[:200], [str(c) for c in choices], n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(near)}?)" if near else ""


def shorten(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message never echoes a 3,000-item list
    or a key with a newline in it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...>"
