"""In-place pixel regularizers: an ordered list of ``(every, gated, operation)`` entries.

**In place, or a loss term?** An operation that rewrites the image between ascent steps (the
blog's clipping, L2 decay, blur, median filter; Yosinski's percentile zeroing) is an entry here:
it acts on the pixel variable after the update, every N steps, and the gradient never sees it.
A penalty that should *shape* the gradient (total variation today, L1 or diversity later) is a
term of the objective (:mod:`vissearch.engine.objectives`), not an entry here. Only
parameterizations whose variable holds the pixels (``Param.in_place``) get these entries.

Each entry runs on the images of the batch whose own settings turn it on and whose own interval
is due at this step, gathered into a sub-batch, so no image pays for another's regularizer and an
image's result never depends on its batch-mates. ``gated`` entries pause during the final
``plain_steps`` of ``keep: plain``; clipping always runs. The order is the blog's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from vissearch.engine import optimizers, transforms
from vissearch.imageio import Preprocess

# (images, gradient, per-image settings, preprocessing) => images, all of one sub-batch
Operation = Callable[[tf.Tensor, tf.Tensor, dict, Preprocess], tf.Tensor]


@dataclass(frozen=True)
class PixelOp:
    """One entry: per-image setting names of its on-switch and interval, and the operation."""

    name: str
    on: str
    every: str
    gated: bool
    fn: Operation


def _decay(x, grad, hp, pre):
    center = tf.constant(pre.pixel_center)
    rate = hp["decay"][:, None, None, None]
    return center + (x - center) * (1 - rate)


def _blur(x, grad, hp, pre):
    return transforms.blur_each(x, hp["blur_kernel"])


def _median(size: int) -> Operation:
    return lambda x, grad, hp, pre: transforms.median(x, size)


def _norm_zero(x, grad, hp, pre):
    center = tf.constant(pre.pixel_center)
    return transforms.zero_below(x, tf.norm(x - center, axis=-1), hp["norm_pct"], center)


def _contrib_zero(x, grad, hp, pre):
    center = tf.constant(pre.pixel_center)
    contrib = tf.abs(tf.reduce_sum((x - center) * grad, axis=-1))
    return transforms.zero_below(x, contrib, hp["contrib_pct"], center)


def _clip(x, grad, hp, pre):
    return tf.clip_by_value(x, 0.0, 255.0)


PIXEL_OPS: tuple[PixelOp, ...] = (
    PixelOp("decay", "decay_on", "decay_every", True, _decay),
    PixelOp("blur", "blur_on", "blur_every", True, _blur),
    PixelOp("median 3x3", "median3_on", "median_every", True, _median(3)),
    PixelOp("median 5x5", "median5_on", "median_every", True, _median(5)),
    PixelOp("norm zeroing", "norm_on", "norm_every", True, _norm_zero),
    PixelOp("contribution zeroing", "contrib_on", "contrib_every", True, _contrib_zero),
    PixelOp("clip", "clip_on", "clip_every", False, _clip),
)
# the per-image settings each operation reads, gathered with its sub-batch
READS = {"decay": ("decay",), "blur": ("blur_kernel",), "norm zeroing": ("norm_pct",),
         "contribution zeroing": ("contrib_pct",)}


def apply(x: tf.Tensor, grad: tf.Tensor, hp: dict[str, tf.Tensor], t: tf.Tensor,
          pre: Preprocess, portable: bool = False) -> tf.Tensor:
    """Run every entry of :data:`PIXEL_OPS` in order on the images it is due for at step ``t``.

    ``portable`` (under XLA, which needs static shapes): each entry runs on the whole batch and
    only the due images take its result, instead of gathering a sub-batch of them.
    """
    t = tf.cast(t, tf.int32)
    for op in PIXEL_OPS:
        due = hp[op.on] & tf.equal(t % hp[op.every], 0)
        if op.gated:
            due = due & (t < hp["plain_from"])
        x = (_on_all if portable else _on_due)(op, x, grad, hp, due, pre)
    return x


def _on_all(op: PixelOp, x, grad, hp, due, pre) -> tf.Tensor:
    new = op.fn(x, grad, {k: hp[k] for k in READS.get(op.name, ())}, pre)
    return optimizers.where(due, new, x)


def _on_due(op: PixelOp, x, grad, hp, due, pre) -> tf.Tensor:
    idx = tf.where(due)[:, 0]

    def run() -> tf.Tensor:
        sub = {k: tf.gather(hp[k], idx) for k in READS.get(op.name, ())}
        new = op.fn(tf.gather(x, idx), tf.gather(grad, idx), sub, pre)
        return tf.tensor_scatter_nd_update(x, idx[:, None], new)

    return tf.cond(tf.size(idx) > 0, run, lambda: x)
