"""The compiled ascent step: ``(variable, state, per-image settings, t) => (variable, state,
activations)`` for a whole batch, as one ``tf.function``.

Forward pass, gradient, per-image update (:mod:`vissearch.optimizers`) and in-place pixel
regularizers (:mod:`vissearch.regularizers`) all run in the graph. Every setting that may differ
between images is a tensor argument, so one traced step serves every batch of a structure
(model, target kind, parameterization, step count), whatever its trials and its size; steps are
cached per process by :func:`get`.

The state holds the optimizer's tensors (``m``, ``v``), ``failed`` (an image met NaN or inf: its
gradient is zeroed from then on) and the best image so far (``best_x``, ``best_val``, tracked
when ``track`` is true, for ``keep: best``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vissearch import objectives, optimizers, regularizers, transforms
from vissearch.config import TargetSpec
from vissearch.loaded import LoadedModel
from vissearch.param import PARAMS

_CACHE: dict[tuple, object] = {}


def objective_of(loaded: LoadedModel, target: TargetSpec) -> tuple:
    """(the target's objective, what the step ascends): the target minus its penalties."""
    goal = objectives.target(loaded, target)
    return goal, goal - objectives.setting("tv") * objectives.total_variation()


def get(loaded: LoadedModel, target: TargetSpec, param: str, total: int):
    """(the compiled step, the target's activation as ``(images, indices) => [B]``) for this
    model, target and parameterization, built once per process."""
    key = (id(loaded.model), loaded.preprocess, target.kind, target.layer, target.reduce,
           param, total)
    if key not in _CACHE:
        goal, ascend = objective_of(loaded, target)

        def activation(images: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
            return goal(objectives.Batch(images, images, indices, {}, loaded.preprocess))

        _CACHE[key] = (build(loaded, goal, ascend, param, total), activation)
    return _CACHE[key]


def initial_state(x: tf.Tensor, failed: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """Zeroed optimizer state, no best image yet, and the failures so far (none by default)."""
    zeros = tf.zeros_like(x)
    state = {name: zeros for name in optimizers.STATE}
    b = tf.shape(x)[0]
    state.update(failed=tf.zeros([b], tf.bool) if failed is None else failed, best_x=x,
                 best_val=tf.fill([b], tf.constant(-np.inf, x.dtype)))
    return state


def build(loaded: LoadedModel, target_objective, ascend, param_name: str, total: int):
    """The ``tf.function`` of one step (see the module docstring)."""
    param, pre = PARAMS[param_name], loaded.preprocess

    @tf.function(reduce_retracing=True)
    def step(x, state, hp, t, track):
        with tf.GradientTape() as tape:
            tape.watch(x)
            images = param.images(x, hp, pre)
            batch = objectives.Batch(images, _seen(images, hp, t), hp["index"], hp, pre)
            act = target_objective(batch)
            total_goal = tf.reduce_sum(ascend(batch))
        grad = tape.gradient(total_goal, x)
        axes = list(range(1, len(x.shape)))
        ok = tf.math.is_finite(act) & tf.reduce_all(tf.math.is_finite(grad), axis=axes)
        grad = tf.where(optimizers.per_image(ok, grad), grad, tf.zeros_like(grad))
        rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True))
        grad = tf.where(optimizers.per_image(hp["normalize"], grad), grad / (rms + 1e-7), grad)
        delta, kept = optimizers.update(-grad, state, hp, t, total)
        new_x = x + delta
        if param.in_place:
            new_x = regularizers.apply(new_x, grad, hp, t, pre)
        better = track & ok & (act > state["best_val"])
        new = dict(kept, failed=state["failed"] | ~ok,
                   best_x=tf.where(optimizers.per_image(better, x), x, state["best_x"]),
                   best_val=tf.where(better, act, state["best_val"]))
        return new_x, new, act

    return step


def _seen(images: tf.Tensor, hp: dict[str, tf.Tensor], t: tf.Tensor) -> tf.Tensor:
    """The images as the network sees them: randomly moved where an image's settings ask."""
    def moved() -> tf.Tensor:
        u = tf.gather(hp["uniforms"], t, axis=1)  # [B, 4]
        out = transforms.random_affine(images, u, hp["jitter"], hp["scale"], hp["rotate"])
        return tf.where(hp["robust"][:, None, None, None], out, images)

    return tf.cond(tf.reduce_any(hp["robust"]), moved, lambda: images)
