"""vissearch: search the settings of feature visualization by activation maximization.

Public API (imported lazily, so ``import vissearch`` does not load TensorFlow):

- :func:`leaderboard` -- a study's trials as a pandas DataFrame, best first.
- :func:`render` -- one batched render with fixed settings.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "leaderboard", "render"]


def __getattr__(name: str):
    if name == "leaderboard":
        from vissearch.study.leaderboards import leaderboard

        return leaderboard
    if name == "render":
        from vissearch.engine.render import render

        return render
    raise AttributeError(f"module 'vissearch' has no attribute {name!r}")
