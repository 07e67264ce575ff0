"""Successive halving inside a population: at each rung, stop the worse part. No TensorFlow.

A population renders K trials together. At each rung (a share of the steps: 1/8, 1/4, 1/2 by
default) every trial still running is scored on its images so far by the study's first
objective, and only the best ``keep`` share goes on (at least one); the others end PRUNED with
the images they had. Most steps then go to the settings that looked best early (Jamieson and
Talwalkar 2016; Li et al. 2017, the idea behind Hyperband), while a population of one renders
as before.
"""

from __future__ import annotations

import math

import numpy as np


def rung_steps(fractions: tuple[float, ...], total: int, window: int) -> tuple[int, ...]:
    """The steps of the rungs: each share of ``total`` rounded to a reporting window, inside
    the render (after the first window, before the last step), without repeats."""
    steps = {max(window, int(round(f * total / window)) * window) for f in fractions}
    return tuple(sorted(s for s in steps if s < total))


def survivors(values: dict[int, float], keep: float, maximize: bool) -> set[int]:
    """The members that go on: the best ``ceil(keep * n)`` by value (NaN ranks last, ties
    keep the earlier member)."""
    if not values:
        return set()
    sign = -1.0 if maximize else 1.0
    order = sorted(values, key=lambda k: (not np.isfinite(values[k]),
                                          sign * values[k] if np.isfinite(values[k]) else 0.0,
                                          k))
    return set(order[: max(1, math.ceil(keep * len(values)))])
