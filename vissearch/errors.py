"""The one exception type a user's mistake turns into.

The command line prints a :class:`UserError` as one line and exits with code 2; everything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix: a bad setting, a missing file, an unknown name."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean: a, b?)"`` for the choices nearest to ``name``, or ``""``."""
    near = difflib.get_close_matches(str(name), list(choices), n=n, cutoff=0.5)
    return f" (did you mean: {', '.join(near)}?)" if near else ""
