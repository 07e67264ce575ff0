"""Where every seed comes from: one study seed, mixed with named constants. No TensorFlow.

A trial renders with :func:`trial_seed` of the study seed and the number of the trial it is (a
retry keeps the number of the trial it repeats); each image draws from its own generator seeded
by that and its position (:func:`vissearch.engine.hparams.image_rng`). A worker's sampler mixes in
the worker and the trials already in the study (:func:`sampler_seed`), so neither a second worker
nor a resumed run replays earlier draws.
"""

from __future__ import annotations

TRIAL_PRIME = 7919  # spreads consecutive trial numbers and workers apart
STUDY_PRIME = 1_000_003  # spreads study seeds and resume points apart
TRIAL_MODULUS = 2**31 - 1  # render seeds stay positive 32-bit integers
SAMPLER_MODULUS = 2**32  # NumPy-based samplers take seeds below 2**32


def trial_seed(study_seed: int, number: int) -> int:
    """The render seed of trial ``number``: fixed by the study seed, distinct per trial."""
    return (study_seed * STUDY_PRIME + number * TRIAL_PRIME) % TRIAL_MODULUS


def sampler_seed(study_seed: int, worker: int = 0, existing: int = 0) -> int:
    """The sampler seed of ``worker`` starting on a study that already holds ``existing``
    trials."""
    return (study_seed + TRIAL_PRIME * worker + STUDY_PRIME * existing) % SAMPLER_MODULUS
