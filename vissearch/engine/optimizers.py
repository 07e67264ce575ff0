"""Per-image optimizers and learning-rate schedules.

``(gradient, state, hyperparameters, step) => (update, state)``, every hyperparameter a tensor
with one value per image. A population renders many trials in one batch, each image with its own
learning rate, momentum, schedule and optimizer; a Keras optimizer applies one of each to a whole
variable. So the five update rules below are Keras's own (``SGD``, ``SGD(nesterov=True)``,
``RMSprop``, ``Adam`` and ``Nadam`` with their Keras defaults), written per image and checked
against Keras in the tests; the schedules are Keras's schedule classes given per-image tensors
(and the formula of ``ExponentialDecay(staircase=True)``, whose constructor refuses a tensor).

Ascent: the caller passes the *negative* gradient of the objective, as to a Keras optimizer that
minimizes, and adds the returned update to the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

RHO = 0.9  # RMSprop
BETA_1, BETA_2 = 0.9, 0.999  # Adam
EPSILON = 1e-7  # RMSprop and Adam, as Keras
NADAM_DECAY = 0.96  # Nadam's momentum schedule, as Keras


def per_image(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """``values [B]`` shaped to broadcast over ``like [B, ...]``."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))


def where(mine: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Image ``i`` of ``a`` where ``mine[i]``, else of ``b`` (``mine [B]`` bool).

    TensorFlow's first ``Select`` takes whole rows for a rank-1 condition, a copy; ``tf.where``
    with the condition shaped ``[B, 1, 1, 1]`` broadcasts it element by element, about twenty
    times slower on the CPU on a 512 px batch. The values are the same.
    """
    return tf.raw_ops.Select(condition=mine, x=a, y=b)


@dataclass(frozen=True)
class Rule:
    """One update rule: the state tensors it keeps, and ``fn(g, state, lr, hp, t) -> (update,
    new state)``; ``lr`` and ``hp`` values are already shaped to broadcast over ``g``."""

    state: tuple[str, ...]
    fn: Callable


def _sgd(g, state, lr, hp, t):
    return -lr * g, {}


def _nesterov(g, state, lr, hp, t):
    m = state["m"] * hp["momentum"] - g * lr
    return m * hp["momentum"] - g * lr, {"m": m}


def _rmsprop(g, state, lr, hp, t):
    v = RHO * state["v"] + (1 - RHO) * tf.square(g)
    return -(lr * g) / tf.sqrt(v + EPSILON), {"v": v}


def _adam(g, state, lr, hp, t):
    step = tf.cast(t + 1, g.dtype)
    alpha = lr * tf.sqrt(1 - BETA_2**step) / (1 - BETA_1**step)
    m = state["m"] + (g - state["m"]) * (1 - BETA_1)
    v = state["v"] + (tf.square(g) - state["v"]) * (1 - BETA_2)
    return -(m * alpha) / (tf.sqrt(v) + EPSILON), {"m": m, "v": v}


def _nadam(g, state, lr, hp, t):
    # Keras keeps the product of the momentum schedule in a variable; here it is recomputed
    # from the step, so the state stays the two moments every rule shares
    step = tf.cast(t + 1, g.dtype)
    schedule = BETA_1 * (1.0 - 0.5 * tf.pow(NADAM_DECAY, tf.range(1.0, step + 2.0)))
    u_t, u_next = schedule[-2], schedule[-1]
    product = tf.reduce_prod(schedule[:-1])
    m = state["m"] + (g - state["m"]) * (1 - BETA_1)
    v = state["v"] + (tf.square(g) - state["v"]) * (1 - BETA_2)
    m_hat = u_next * m / (1 - product * u_next) + (1 - u_t) * g / (1 - product)
    v_hat = v / (1 - BETA_2**step)
    return -(m_hat * lr) / (tf.sqrt(v_hat) + EPSILON), {"m": m, "v": v}


OPTIMIZERS: dict[str, Rule] = {
    "sgd": Rule((), _sgd),
    "nesterov": Rule(("m",), _nesterov),
    "rmsprop": Rule(("v",), _rmsprop),
    "adam": Rule(("m", "v"), _adam),
    "nadam": Rule(("m", "v"), _nadam),
}
STATE = ("m", "v")  # every state tensor any rule keeps; all start at zero


def update(g: tf.Tensor, state: dict[str, tf.Tensor], hp: dict[str, tf.Tensor],
           t: tf.Tensor, total: int) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The update of every image by its own rule and schedule; the state it leaves.

    ``hp`` holds per-image ``optimizer`` (an index into :data:`OPTIMIZERS`), ``schedule`` (an
    index into :data:`SCHEDULES`), ``lr``, ``momentum``, ``lr_final``, ``lr_step_every`` and
    ``lr_step_gamma``. Each rule runs on the whole batch (elementwise, cheap next to the
    network) and each image takes its own rule's result, so an image's numbers never depend on
    its batch-mates.
    """
    lr = per_image(learning_rate(hp, t, total), g)
    shaped = {"momentum": per_image(hp["momentum"], g)}
    out, new = tf.zeros_like(g), dict(state)
    for code, rule in enumerate(OPTIMIZERS.values()):
        mine = tf.equal(hp["optimizer"], code)
        step, kept = rule.fn(g, state, lr, shaped, t)
        out = where(mine, step, out)
        for name, value in kept.items():
            new[name] = where(mine, value, new[name])
    return out, new


def _constant(hp, total):
    return lambda t: hp["lr"]


def _step(hp, total):
    # ExponentialDecay(staircase=True)'s formula: its constructor refuses a per-image decay_steps
    def schedule(t):
        p = tf.floor(tf.cast(t, hp["lr"].dtype) / hp["lr_step_every"])
        return hp["lr"] * tf.pow(hp["lr_step_gamma"], p)

    return schedule


def _cosine(hp, total):
    return keras.optimizers.schedules.CosineDecay(hp["lr"], max(total, 1), alpha=hp["lr_final"])


def _linear(hp, total):
    return keras.optimizers.schedules.PolynomialDecay(
        hp["lr"], max(total, 1), end_learning_rate=hp["lr"] * hp["lr_final"], power=1.0)


SCHEDULES: dict[str, Callable] = {
    "constant": _constant, "step": _step, "cosine": _cosine, "linear": _linear,
}


def learning_rate(hp: dict[str, tf.Tensor], t: tf.Tensor, total: int) -> tf.Tensor:
    """Per-image learning rate at step ``t`` of ``total``: each image's own schedule."""
    out = tf.zeros_like(hp["lr"])
    for code, make in enumerate(SCHEDULES.values()):
        value = tf.cast(make(hp, total)(t), hp["lr"].dtype)
        out = tf.where(tf.equal(hp["schedule"], code), value, out)
    return out
