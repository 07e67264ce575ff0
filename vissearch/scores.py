"""Scores of a render: ``(render result) => float``. Pure NumPy, cheap, each selectable as a study
objective by name.

Every trial records all scores; the study optimizes the ones named in ``study.objective``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Score:
    fn: Callable[..., float]
    direction: str  # "maximize" or "minimize"
    help: str


def _alive(result) -> np.ndarray:
    return ~np.asarray(result.failed, bool)


def activation(result) -> float:
    """Mean final activation over the targets that did not fail."""
    acts = np.asarray(result.activations, np.float64)[_alive(result)]
    return float(np.mean(acts)) if acts.size else float("nan")


def dead(result) -> float:
    """Targets whose activation never rose above zero."""
    return float(np.sum(result.dead))


def failed(result) -> float:
    """Targets that met NaN or inf."""
    return float(np.sum(result.failed))


SCORES: dict[str, Score] = {
    "activation": Score(activation, "maximize", "mean final activation of the targets"),
    "dead": Score(dead, "minimize", "count of targets stuck at zero"),
    "failed": Score(failed, "minimize", "count of targets that met NaN/inf"),
}


def compute(result) -> dict[str, float]:
    """Every registered score of ``result``."""
    return {name: float(s.fn(result)) for name, s in SCORES.items()}
