"""Scores of a render: ``(render result, models) => float``, one registry, each selectable as a
study objective by name. No TensorFlow here.

Most scores read the images alone. Those that need a network (the optimized model's probability,
the judge's transfer, robustness to held-out transforms) ask a :class:`Models` object for NumPy
arrays; :class:`vissearch.scoring.evaluate.Evaluator` is the one that runs the networks. Adding a
score is an entry in :data:`SCORES`; it gets NaN where it does not apply (no judge, a filter
target).

Every trial records all scores; the study optimizes the ones named in ``study.objective``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vissearch.scoring import readability

NAN = float("nan")


class Models(Protocol):
    """What the model-based scores may ask about a render (None: it does not apply)."""

    def class_probs(self, result) -> np.ndarray | None:
        """The optimized model's softmax ``[B, classes]`` on the images (class targets)."""

    def judge_probs(self, result) -> np.ndarray | None:
        """The judge's softmax ``[B, 1 + crops, classes]`` on each whole image (first) and on
        random crops of it."""

    def moved_activations(self, result) -> np.ndarray:
        """``[B]`` the target's activation averaged over held-out random shifts and scales."""

    def best_real(self, result) -> np.ndarray | None:
        """``[B]`` the best activation of each target over real images (zoo/shapes only)."""


@dataclass(frozen=True)
class Score:
    fn: Callable[..., float]  # (result) or, with needs_models, (result, models)
    direction: str  # "maximize" or "minimize"
    help: str
    needs_models: bool = False
    # what a study must have for the score to be a number: "" (anything), "class" (a class
    # target), "judge" (a class target and a judge), "shapes" (a zoo/shapes model)
    needs: str = ""


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


def _alive_pixels(result) -> list[np.ndarray]:
    """RGB pixels (clipped to 0..255) of each image that did not fail."""
    pixels = np.clip(result.pixels(), 0, 255)
    return [p for p, ok in zip(pixels, _alive(result), strict=True) if ok]


def _gray_images(result) -> list[np.ndarray]:
    return [p.mean(axis=-1) for p in _alive_pixels(result)]


def _mean_over_images(fn) -> Callable[..., float]:
    def score(result) -> float:
        values = [fn(g) for g in _gray_images(result)]
        return float(np.nanmean(values)) if values else float("nan")

    score.__doc__ = fn.__doc__
    return score


spectrum_slope = _mean_over_images(spectrum_slope_of)
high_frequency = _mean_over_images(high_frequency_share_of)


def _readability_of(measure: str) -> Callable[..., float]:
    def score(result) -> float:
        values = [m[measure] for m in _measured(result)]
        return float(np.nanmean(values)) if values else NAN

    lo, hi = readability.BANDS[measure]
    score.__doc__ = f"Mean {measure} of the images; natural photos {lo:g}..{hi:g}."
    return score


_MEASURED: list = [None, []]  # the last result measured and its measures


def _measured(result) -> list[dict[str, float]]:
    """The readability measures of each image that did not fail, computed once per result
    (seven scores read them)."""
    if _MEASURED[0] is not result:
        _MEASURED[:] = [result, [readability.measures(p) for p in _alive_pixels(result)]]
    return _MEASURED[1]


def readability_score(result) -> float:
    """Minus the mean distance of the images outside the natural photos' bands (0 is best)."""
    values = [readability.penalty_of(m) for m in _measured(result)]
    return -float(np.mean(values)) if values else NAN


def readable_transfer(result, models: Models) -> float:
    """The judge's transfer less the images' mean distance outside the natural bands."""
    return transfer(result, models) + readability_score(result)


def readable_robustness(result, models: Models) -> float:
    """Robustness less the images' mean distance outside the natural bands (filters have no
    judge: this ranks what a filter's images keep under held-out moves, and how they read)."""
    return robustness(result, models) + readability_score(result)


def naturalness(result) -> float:
    """How close the spectrum slope is to natural images' -2: ``-|slope + 2|`` (0 is best)."""
    return -abs(spectrum_slope(result) + 2.0)


def total_variation(result) -> float:
    """Mean absolute difference between neighbouring pixels, 0..1 scale."""
    values = [np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()
              for g in _gray_images(result)]
    return float(np.mean(values)) / 255.0 if values else float("nan")


def _alive_mean(values, result) -> float:
    v = np.asarray(values, np.float64)[_alive(result)]
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else NAN


def _target_probs(probs: np.ndarray, result) -> np.ndarray:
    """The probability of each image's own target, from ``probs [B, ..., classes]``."""
    idx = np.asarray(result.indices).reshape((-1,) + (1,) * (probs.ndim - 1))
    return np.take_along_axis(probs, idx, axis=-1)[..., 0]


def probability(result, models: Models) -> float:
    """The optimized model's softmax probability of the target class."""
    probs = models.class_probs(result)
    return NAN if probs is None else _alive_mean(_target_probs(probs, result), result)


def _judge_rank(result, models: Models) -> tuple[np.ndarray, np.ndarray] | None:
    """(classes the judge rates above the target, the target's probability), ``[B, crops]``."""
    probs = models.judge_probs(result)
    if probs is None:
        return None
    p = _target_probs(probs, result)
    return (probs > p[..., None]).sum(axis=-1), p


def _whole_and_crops(values: np.ndarray, part: str) -> np.ndarray:
    """``[B]`` from per-view values ``[B, 1 + crops]``: the whole image's, the crops' mean, or
    (``both``) the mean of those two, so the whole image weighs as much as all its crops."""
    whole, crops = values[:, 0], values[:, 1:].mean(axis=1)
    return {"whole": whole, "crops": crops, "both": (whole + crops) / 2}[part]


def _transfer_at(k: int, part: str = "both") -> Callable:
    def score(result, models: Models) -> float:
        judged = _judge_rank(result, models)
        if judged is None:
            return NAN
        return _alive_mean(_whole_and_crops((judged[0] < k).astype(float), part), result)

    seen = {"both": "the mean of the whole image's and its random crops'",
            "whole": "on the whole image", "crops": "over the random crops of each image"}
    score.__doc__ = f"The judge's top-{k} accuracy: {seen[part]}."
    return score


transfer, transfer_top5 = _transfer_at(1), _transfer_at(5)
transfer_whole, transfer_crops = _transfer_at(1, "whole"), _transfer_at(1, "crops")


def transfer_prob(result, models: Models) -> float:
    """The judge's probability of the target: the mean of the whole image's and the crops'."""
    judged = _judge_rank(result, models)
    return NAN if judged is None else _alive_mean(_whole_and_crops(judged[1], "both"), result)


def _ratio(values: np.ndarray, base: np.ndarray) -> np.ndarray:
    base = np.asarray(base, np.float64)
    return np.where(base > 0, values / np.where(base > 0, base, 1), np.nan)


def robustness(result, models: Models) -> float:
    """Activation under held-out jitter and scale / the activation as rendered."""
    return _alive_mean(_ratio(models.moved_activations(result), result.activations), result)


def activation_norm(result, models: Models) -> float:
    """Activation / the best activation of the target over real examples."""
    best = models.best_real(result)
    return NAN if best is None else _alive_mean(_ratio(result.activations, best), result)


SCORES: dict[str, Score] = {
    "activation": Score(activation, "maximize", "mean final activation of the targets"),
    "activation_norm": Score(activation_norm, "maximize",
                             "activation / activation of the best real example (zoo models)",
                             True, "shapes"),
    "probability": Score(probability, "maximize",
                         "the model's softmax probability of the target class", True, "class"),
    "transfer": Score(transfer, "maximize",
                      "judge's top-1 accuracy: mean of the whole image's and 8 crops'", True,
                      "judge"),
    "transfer_whole": Score(transfer_whole, "maximize",
                            "judge's top-1 accuracy on the whole image", True, "judge"),
    "transfer_crops": Score(transfer_crops, "maximize",
                            "judge's top-1 accuracy on 8 random 85% crops", True, "judge"),
    "transfer_top5": Score(transfer_top5, "maximize",
                           "judge's top-5 accuracy: mean of the whole image's and 8 crops'",
                           True, "judge"),
    "transfer_prob": Score(transfer_prob, "maximize",
                           "judge's probability of the target: mean of whole and crops", True,
                           "judge"),
    "robustness": Score(robustness, "maximize",
                        "activation under held-out jitter and scale / unperturbed activation",
                        True),
    "readable_transfer": Score(readable_transfer, "maximize",
                               "transfer less the distance outside the photos' bands", True,
                               "judge"),
    "readable_robustness": Score(readable_robustness, "maximize",
                                 "robustness less the distance outside the photos' bands", True),
    "readability": Score(readability_score, "maximize",
                         "minus the distance outside the natural photos' bands; 0 inside"),
    "edge_energy": Score(_readability_of("edge_energy"), "minimize",
                         "mean Sobel magnitude at 224 px; photos 26-106, collages 160+"),
    "edge_density": Score(_readability_of("edge_density"), "minimize",
                          "share of strong-edge pixels at 224 px; photos 0.07-0.38"),
    "fine_edges": Score(_readability_of("fine_edges"), "minimize",
                        "edge energy at 224 px / at 56 px; photos 0.52-0.76, noise 2+"),
    "rms_contrast": Score(_readability_of("rms_contrast"), "maximize",
                          "std of the grey image; photos 28-73, flat fields below"),
    "edge_spread": Score(_readability_of("edge_spread"), "minimize",
                         "share of 16 px blocks holding half the edges; photos 0.16-0.31"),
    "naturalness": Score(naturalness, "maximize", "-|spectrum slope + 2|; natural images ~ 0"),
    "spectrum_slope": Score(spectrum_slope, "minimize",
                            "slope of the radial power spectrum: -2 natural, 0 white noise"),
    "high_frequency": Score(high_frequency, "minimize",
                            "share of spectral energy above half the Nyquist radius"),
    "tv": Score(total_variation, "minimize", "total variation of the image, 0..1 scale"),
    "dead": Score(dead, "minimize", "count of targets stuck at zero"),
    "failed": Score(failed, "minimize", "count of targets that met NaN/inf"),
}


def compute(result, models: Models | None = None, pure: bool = True) -> dict[str, float]:
    """Scores of ``result``: the pure ones (``pure``), and with ``models`` the model-based ones;
    scores whose inputs are missing are left out."""
    out = {}
    for name, s in SCORES.items():
        if s.needs_models and models is not None:
            out[name] = float(s.fn(result, models))
        elif not s.needs_models and pure:
            out[name] = float(s.fn(result))
    return out
