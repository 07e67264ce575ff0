"""Successive halving inside a population: at each rung, stop the worse part. No TensorFlow.

A population renders K trials together. At each rung (a share of the steps: 1/8, 1/4, 1/2 by
default) every trial still running is scored on its images so far by the study's objectives
(the first decides, the second breaks its ties), and only the best ``keep`` share goes on (at
least one); the others end PRUNED with
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


def survivors(values: dict[int, tuple[float, ...]], keep: float,
              maximize: tuple[bool, ...]) -> set[int]:
    """The members that go on: the best ``ceil(keep * n)`` (at least one) by their objective
    values, compared in order (a tie on the first is broken by the second); NaN ranks last,
    and a full tie keeps the earlier member."""
    if not values:
        return set()

    def key(k: int) -> tuple:
        out = []
        for v, up in zip(values[k], maximize, strict=True):
            out += [not np.isfinite(v), (-v if up else v) if np.isfinite(v) else 0.0]
        return (*out, k)

    order = sorted(values, key=key)
    return set(order[: max(1, math.ceil(keep * len(values)))])
