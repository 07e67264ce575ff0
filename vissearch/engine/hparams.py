"""Settings as per-image arrays: ``(settings of K trials, their targets) => {name: [B, ...]}``.

A population renders K trials in one batch of ``K x targets`` images. Settings that fix the
shape of the computation form the *structure* (:data:`STRUCTURE`) and must be equal across the
population; every other setting becomes one value per image, and the compiled step reads them
as tensors, so one step serves every population of a structure.

Everything random about an image comes from its own NumPy generator, seeded by its trial's seed
and its position among the trial's targets (:func:`image_rng`): an image's start and its random
transforms never depend on which trials share its batch, nor on batch chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vissearch.engine import optimizers
from vissearch.engine.transforms import BLUR_RADIUS, gaussian_kernel
from vissearch.settings.config import RenderSettings

# Settings that shape the computation: equal within a population.
STRUCTURE = ("param", "size", "canvas", "crops", "steps", "upscale_stages", "upscale_factor",
             "early_stop_window", "precision", "jit", "fold_batchnorm")


def structure(s: RenderSettings) -> tuple:
    """The structure key of a trial's settings."""
    return tuple(getattr(s, name) for name in STRUCTURE)


START, TRANSFORMS, CROPS, NOISE, PHASE = 0, 1, 2, 3, 4  # the random streams of an image


@dataclass(frozen=True)
class Row:
    """One image of a batch: its trial's settings, its position among the trial's targets, and
    the target index it ascends."""

    settings: RenderSettings
    position: int
    index: int


def image_rng(seed: int, position: int, stream: int) -> np.random.Generator:
    """A generator of the image at ``position`` among the targets of the trial with ``seed``:
    stream :data:`START` draws its first image, :data:`TRANSFORMS` its random transforms,
    :data:`CROPS` its random crops, :data:`NOISE` the key of its crops' noise, :data:`PHASE`
    its fixed MaCo phase offset."""
    return np.random.default_rng([seed, position, stream])


def pack(rows: list[Row], total: int) -> dict[str, np.ndarray]:
    """Per-image arrays ``[B]`` of every dynamic setting; ``total`` is the render's step count
    (for ``keep: plain``)."""
    def col(fn, dtype=np.float32) -> np.ndarray:
        return np.array([fn(r.settings) for r in rows], dtype=dtype)

    opt_codes = {name: i for i, name in enumerate(optimizers.OPTIMIZERS)}
    sched_codes = {name: i for i, name in enumerate(optimizers.SCHEDULES)}
    return {
        "index": np.array([r.index for r in rows], np.int32),
        "lr": col(lambda s: s.lr), "momentum": col(lambda s: s.momentum),
        "optimizer": col(lambda s: opt_codes[s.optimizer], np.int32),
        "schedule": col(lambda s: sched_codes[s.schedule], np.int32),
        "lr_final": col(lambda s: s.lr_final), "lr_step_every": col(lambda s: s.lr_step_every),
        "lr_step_gamma": col(lambda s: s.lr_step_gamma),
        "normalize": col(lambda s: s.normalize_grad, bool),
        "clip_on": col(lambda s: s.clip, bool),
        "clip_every": col(lambda s: s.clip_every, np.int32),
        "decay_on": col(lambda s: s.decay > 0, bool), "decay": col(lambda s: s.decay),
        "decay_every": col(lambda s: s.decay_every, np.int32),
        "blur_on": col(lambda s: s.blur_sigma > 0, bool),
        "blur_every": col(lambda s: s.blur_every, np.int32),
        "median3_on": col(lambda s: s.median_size == 3, bool),
        "median5_on": col(lambda s: s.median_size == 5, bool),
        "median_every": col(lambda s: s.median_every, np.int32),
        "norm_on": col(lambda s: s.norm_pct > 0, bool), "norm_pct": col(lambda s: s.norm_pct),
        "norm_every": col(lambda s: s.norm_pct_every, np.int32),
        "contrib_on": col(lambda s: s.contrib_pct > 0, bool),
        "contrib_pct": col(lambda s: s.contrib_pct),
        "contrib_every": col(lambda s: s.contrib_pct_every, np.int32),
        "robust": col(lambda s: bool(s.jitter or s.scale or s.rotate), bool),
        "jitter": col(lambda s: s.jitter), "scale": col(lambda s: s.scale),
        "rotate": col(lambda s: s.rotate), "tv": col(lambda s: s.tv),
        "rivals": col(lambda s: s.rivals),
        "keep_best": col(lambda s: s.keep == "best", bool),
        "plain_from": col(lambda s: total - s.plain_steps if s.keep == "plain" else total,
                          np.int32),
        "decorrelate": col(lambda s: s.decorrelate, bool),
        "contrast": col(lambda s: s.contrast),
        "crop_min": col(lambda s: s.crop_min), "crop_max": col(lambda s: s.crop_max),
        "crop_spread": col(lambda s: s.crop_spread),
        "crop_shrink": col(lambda s: s.crop_schedule == "shrink", bool),
        "crop_center_std": col(lambda s: s.crop_center_std),
        "crop_noise": col(lambda s: s.crop_noise),
        "noise_key": np.array([image_rng(r.settings.seed, r.position, NOISE).integers(2**31 - 1)
                               for r in rows], np.int32),
    }


def blur_kernels(rows: list[Row], side: int) -> np.ndarray:
    """``[B, 2R + 1]`` gaussian kernels, one per image (a unit impulse where blur is off).

    R is :data:`~vissearch.engine.transforms.BLUR_RADIUS`, or the image side less one on images too
    small for it: a fixed width keeps an image's blur independent of its batch-mates.
    """
    radius = min(BLUR_RADIUS, side - 1)
    out = np.zeros((len(rows), 2 * radius + 1), np.float32)
    for i, r in enumerate(rows):
        sigma = r.settings.blur_sigma
        if sigma > 0:
            out[i] = gaussian_kernel(sigma, radius=radius)
        else:
            out[i, radius] = 1.0
    return out


def uniforms(rows: list[Row], total: int) -> np.ndarray:
    """``[B, total, 4]`` uniforms in [0, 1) per image and step, for the random transforms."""
    out = np.empty((len(rows), total, 4), np.float32)
    for i, r in enumerate(rows):
        rng = image_rng(r.settings.seed, r.position, TRANSFORMS)
        out[i] = rng.random((total, 4), dtype=np.float32)
    return out


def crop_uniforms(rows: list[Row], total: int, crops: int) -> np.ndarray:
    """``[B, total, crops, 3]`` uniforms in [0, 1) per image, step and crop: the crop's side
    and its two offsets (empty when ``crops`` is 0)."""
    out = np.empty((len(rows), total, crops, 3), np.float32)
    for i, r in enumerate(rows):
        rng = image_rng(r.settings.seed, r.position, CROPS)
        out[i] = rng.random((total, crops, 3), dtype=np.float32)
    return out
