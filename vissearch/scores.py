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
    fn: Callable[..., float] | None  # None: computed with models (vissearch.evaluate)
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


def radial_power(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a square-ish image: (frequency radius, mean power).

    Radii are whole cycles per image from 1 to half the shorter side; the mean is removed first.
    """
    g = np.asarray(gray, np.float64)
    power = np.abs(np.fft.fftshift(np.fft.fft2(g - g.mean()))) ** 2
    h, w = g.shape
    y, x = np.indices(power.shape)
    radius = np.rint(np.hypot(y - h // 2, x - w // 2)).astype(int)
    n = min(h, w) // 2
    sums = np.bincount(radius.ravel(), power.ravel(), minlength=n + 1)[: n + 1]
    counts = np.bincount(radius.ravel(), minlength=n + 1)[: n + 1]
    freqs = np.arange(1, n + 1)
    return freqs, sums[1:] / np.maximum(counts[1:], 1)


def spectrum_slope_of(gray: np.ndarray) -> float:
    """Least-squares slope of log power against log frequency: natural images ~ -2, noise ~ 0."""
    freqs, power = radial_power(gray)
    ok = power > 0
    if ok.sum() < 3:
        return float("nan")
    return float(np.polyfit(np.log(freqs[ok]), np.log(power[ok]), 1)[0])


def high_frequency_share_of(gray: np.ndarray) -> float:
    """Share of the spectrum's energy above half the Nyquist radius."""
    freqs, power = radial_power(gray)
    shells = power * freqs  # mean power times ring size ~ energy per radius
    total = shells.sum()
    return float(shells[freqs > freqs[-1] / 2].sum() / total) if total > 0 else float("nan")


def _gray_images(result) -> list[np.ndarray]:
    pixels = np.clip(result.pixels(), 0, 255)
    return [p.mean(axis=-1) for p, ok in zip(pixels, _alive(result), strict=True) if ok]


def _mean_over_images(fn) -> Callable[..., float]:
    def score(result) -> float:
        values = [fn(g) for g in _gray_images(result)]
        return float(np.nanmean(values)) if values else float("nan")

    score.__doc__ = fn.__doc__
    return score


spectrum_slope = _mean_over_images(spectrum_slope_of)
high_frequency = _mean_over_images(high_frequency_share_of)


def naturalness(result) -> float:
    """How close the spectrum slope is to natural images' -2: ``-|slope + 2|`` (0 is best)."""
    return -abs(spectrum_slope(result) + 2.0)


def total_variation(result) -> float:
    """Mean absolute difference between neighbouring pixels, 0..1 scale."""
    values = [np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()
              for g in _gray_images(result)]
    return float(np.mean(values)) / 255.0 if values else float("nan")


SCORES: dict[str, Score] = {
    "activation": Score(activation, "maximize", "mean final activation of the targets"),
    "activation_norm": Score(None, "maximize",
                             "activation / activation of the best real example (zoo models)"),
    "probability": Score(None, "maximize", "the model's softmax probability of the target class"),
    "transfer": Score(None, "maximize",
                      "judge's top-1 accuracy on the images under random crops"),
    "transfer_top5": Score(None, "maximize",
                           "judge's top-5 accuracy on the images under random crops"),
    "transfer_prob": Score(None, "maximize",
                           "judge's mean probability of the target under random crops"),
    "robustness": Score(None, "maximize",
                        "activation under held-out jitter and scale / unperturbed activation"),
    "naturalness": Score(naturalness, "maximize", "-|spectrum slope + 2|; natural images ~ 0"),
    "spectrum_slope": Score(spectrum_slope, "minimize",
                            "slope of the radial power spectrum: -2 natural, 0 white noise"),
    "high_frequency": Score(high_frequency, "minimize",
                            "share of spectral energy above half the Nyquist radius"),
    "tv": Score(total_variation, "minimize", "total variation of the image, 0..1 scale"),
    "dead": Score(dead, "minimize", "count of targets stuck at zero"),
    "failed": Score(failed, "minimize", "count of targets that met NaN/inf"),
}


def compute(result) -> dict[str, float]:
    """Every pure (model-free) score of ``result``."""
    return {name: float(s.fn(result)) for name, s in SCORES.items() if s.fn is not None}
