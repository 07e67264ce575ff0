"""The compiled ascent step: ``(variable, state, per-image settings, t) => (variable, state,
activations)`` for a whole batch, as one ``tf.function``.

The model sees each image whole, resized from its canvas to the model's side where they differ,
or as ``crops`` random crops averaged into one objective value (MaCo's and lucid's crop
robustness). Forward pass, gradient, per-image update (:mod:`vissearch.engine.optimizers`) and
in-place pixel regularizers (:mod:`vissearch.engine.regularizers`) all run in the graph. Every
setting that may differ between images is a tensor argument, so one traced step serves every batch
of a structure (model, target kind, parameterization, step count, canvas, crops), whatever its
trials and its size; steps are cached per process by :func:`get`. The step's network has its
batch normalizations folded into the layers before them unless ``fold_batchnorm`` is off
(:mod:`vissearch.engine.folding`); with ``precision: mixed`` it computes in bfloat16
(:mod:`vissearch.engine.precision`). Finished images are scored by the network as loaded.

The state holds the optimizer's tensors (``m``, ``v``), ``failed`` (an image met NaN or inf: its
gradient is zeroed from then on) and the best image so far (``best_x``, ``best_val``, tracked
when ``track`` is true, for ``keep: best``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from vissearch.engine import folding, objectives, optimizers, precision, regularizers, transforms
from vissearch.engine.param import PARAMS
from vissearch.models.loaded import LoadedModel
from vissearch.settings.config import RenderSettings, TargetSpec

_CACHE: dict[tuple, object] = {}
SHRINK_SPREAD = 0.05  # crop_schedule shrink: a crop's side strays this far from the schedule


def objective_of(loaded: LoadedModel, target: TargetSpec) -> tuple:
    """(the target's objective, what the step ascends): the target minus its penalties (and, for
    a class, minus a share of the log-sum-exp of every class score)."""
    goal = objectives.target(loaded, target)
    ascend = goal - objectives.weighted("tv", objectives.total_variation())
    if target.kind == "class":
        ascend = ascend - objectives.weighted("rivals", objectives.class_logsumexp(loaded))
    return goal, ascend


def view_side(settings: RenderSettings) -> int | None:
    """The side the model sees when the canvas differs from it, else None."""
    s = settings
    return s.size if s.canvas and s.canvas != s.size else None


def get(loaded: LoadedModel, target: TargetSpec, settings: RenderSettings):
    """(the compiled step, the target's activation as ``(images, indices) => [B]`` on whole
    images of any side, seen at ``size``) for this model, target and structure
    (:data:`vissearch.engine.hparams.STRUCTURE`), built once per process."""
    s, view = settings, view_side(settings)
    key = (id(loaded.model), loaded.preprocess, target.kind, target.layer, target.reduce,
           s.param, s.size, s.total_steps, s.crops, view, s.precision, s.jit, s.fold_batchnorm)
    if key not in _CACHE:
        stepped = loaded
        if s.fold_batchnorm and not folding.reads_folded(loaded.model, target.layer):
            stepped = dataclasses.replace(loaded, model=folding.folded(loaded.model))
        if s.precision == "mixed":
            precision.check_device(s.precision)
            stepped = dataclasses.replace(stepped, model=precision.mixed(stepped.model))
        step_goal, ascend = objective_of(stepped, target)
        # finished images are scored by the float32 network
        goal = step_goal if stepped is loaded else objective_of(loaded, target)[0]

        def activation(images: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
            seen = images if images.shape[1] == s.size else _resized(images, s.size)
            return goal(objectives.Batch(images, seen, indices, {}, loaded.preprocess))

        step_fn = build(stepped, step_goal, ascend, s.param, s.total_steps, s.crops, view,
                        s.size, s.jit)
        _CACHE[key] = (step_fn, activation)
    return _CACHE[key]


def initial_state(x: tf.Tensor, failed: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """Zeroed optimizer state, no best image yet, and the failures so far (none by default)."""
    zeros = tf.zeros_like(x)
    state = {name: zeros for name in optimizers.STATE}
    b = tf.shape(x)[0]
    state.update(failed=tf.zeros([b], tf.bool) if failed is None else failed, best_x=x,
                 best_val=tf.fill([b], tf.constant(-np.inf, x.dtype)))
    return state


def build(loaded: LoadedModel, target_objective, ascend, param_name: str, total: int,
          crops: int = 0, view: int | None = None, size: int = 0, jit: bool = False):
    """The ``tf.function`` of one step (see the module docstring): the model sees ``crops``
    random crops of each image resized to ``size`` pixels, or (``crops`` 0) the whole image,
    resized to ``view`` pixels unless that is None; ``jit`` compiles it with XLA."""
    param, pre = PARAMS[param_name], loaded.preprocess

    @tf.function(jit_compile=jit)
    def step(x, state, hp, t, track):
        with tf.GradientTape() as tape:
            tape.watch(x)
            images = param.images(x, hp, pre)
            seen = _seen(images, hp, t, jit)
            if crops:
                seen = _noisy(_crops(seen, hp, t, total, crops, size, jit), hp, t, crops, pre)
            elif view is not None:
                seen = _resized(seen, view)
            batch = objectives.Batch(images, seen, hp["index"], hp, pre, max(crops, 1))
            act = target_objective(batch)
            total_goal = tf.reduce_sum(ascend(batch))
        grad = tape.gradient(total_goal, x)
        axes = list(range(1, len(x.shape)))
        ok = tf.math.is_finite(act) & tf.reduce_all(tf.math.is_finite(grad), axis=axes)
        grad = optimizers.where(ok, grad, tf.zeros_like(grad))
        rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True))
        grad = optimizers.where(hp["normalize"], grad / (rms + 1e-7), grad)
        delta, kept = optimizers.update(-grad, state, hp, t, total)
        new_x = x + delta
        if param.in_place:
            new_x = regularizers.apply(new_x, grad, hp, t, pre, portable=jit)
        better = track & ok & (act > state["best_val"])
        new = dict(kept, failed=state["failed"] | ~ok,
                   best_x=optimizers.where(better, x, state["best_x"]),
                   best_val=tf.where(better, act, state["best_val"]))
        return new_x, new, act

    return _any_batch(step)


def _any_batch(fn):
    """``fn`` traced for any batch size from the first call of each other shape on.

    A trace for one batch size and a trace for any batch size compile to different kernels,
    whose sums differ in the last bits, and a MaCo ascent turns those bits into another image.
    Tracing every step with an unknown batch dimension keeps a trial's images independent of
    which batches ran before it in the process (the study's run against ``reproduce``).
    """
    traced: dict = {}

    def spec(v: tf.Tensor) -> tf.TensorSpec:
        shape = v.shape if v.shape.rank == 0 else [None, *v.shape[1:]]
        return tf.TensorSpec(shape, v.dtype)

    def call(*args):
        specs = tf.nest.map_structure(spec, args)
        key = (str(tf.nest.map_structure(lambda _: 0, specs)),
               tuple((tuple(s.shape.as_list()), s.dtype.name) for s in tf.nest.flatten(specs)))
        if key not in traced:
            traced[key] = fn.get_concrete_function(*specs)
        return traced[key](*args)

    return call


def _seen(images: tf.Tensor, hp: dict[str, tf.Tensor], t: tf.Tensor,
          portable: bool = False) -> tf.Tensor:
    """The images as the network sees them: randomly moved where an image's settings ask
    (``portable``: with ops that XLA compiles)."""
    def moved() -> tf.Tensor:
        u = tf.gather(hp["uniforms"], t, axis=1)  # [B, 4]
        out = transforms.random_affine(images, u, hp["jitter"], hp["scale"], hp["rotate"],
                                       portable)
        return optimizers.where(hp["robust"], out, images)

    return tf.cond(tf.reduce_any(hp["robust"]), moved, lambda: images)


def _crops(images: tf.Tensor, hp: dict[str, tf.Tensor], t: tf.Tensor, total: int, crops: int,
           side_out: int, portable: bool = False) -> tf.Tensor:
    """``[B * crops, S, S, 3]``: random square crops of each image, image by image, their side
    a share of the image's between its ``crop_min`` and ``crop_max`` (``crop_schedule:
    shrink``: around a side that falls from ``crop_max`` to ``crop_min`` over the steps, give
    or take :data:`SHRINK_SPREAD`, as MaCo's boxes do) and their offset within ``crop_spread``
    of the centred one, resized to ``side_out``. With ``crop_center_std`` above 0 the crop's
    centre is normal around the image's instead (MaCo's), and the crop may leave the image:
    beyond it the model sees zeros (the ``portable`` path reflects the image instead).
    Bilinear, so the gradient reaches every covered pixel."""
    u = tf.gather(hp["crop_uniforms"], t, axis=1)  # [B, crops, 3]
    lo, hi = hp["crop_min"][:, None], hp["crop_max"][:, None]
    done = tf.cast(t, tf.float32) / float(max(total - 1, 1))
    shrunk = hi + (lo - hi) * done + SHRINK_SPREAD * (2.0 * u[..., 0] - 1.0)
    side = tf.where(hp["crop_shrink"][:, None], tf.clip_by_value(shrunk, 0.02, 1.0),
                    lo + (hi - lo) * u[..., 0])
    spread = hp["crop_spread"][:, None, None]  # 1: anywhere in the image; 0: centred
    where = tf.where(spread < 1.0, 0.5 + spread * (u[..., 1:] - 0.5), u[..., 1:])  # exact at 1
    corner = where * (1.0 - side[..., None])
    std = hp["crop_center_std"][:, None, None]
    centre = 0.5 + std * tf.math.ndtri(tf.clip_by_value(u[..., 1:], 1e-6, 1.0 - 1e-6))
    corner = tf.where(std > 0.0, centre - 0.5 * side[..., None], corner)
    y0, x0 = corner[..., 0], corner[..., 1]
    if portable:  # crop_and_resize's sampling by plain gathers (XLA has no kernel for it)
        n = tf.cast(tf.shape(images)[1] - 1, tf.float32)
        steps = tf.linspace(0.0, 1.0, side_out)  # [S]
        ys = tf.reshape((y0[..., None] + side[..., None] * steps) * n, [-1, side_out])
        xs = tf.reshape((x0[..., None] + side[..., None] * steps) * n, [-1, side_out])
        ys = tf.broadcast_to(ys[:, :, None], [tf.shape(ys)[0], side_out, side_out])
        xs = tf.broadcast_to(xs[:, None, :], [tf.shape(xs)[0], side_out, side_out])
        return transforms.sample_bilinear(tf.repeat(images, crops, axis=0), ys, xs)
    boxes = tf.reshape(tf.stack([y0, x0, y0 + side, x0 + side], axis=-1), [-1, 4])
    return transforms.crop_and_resize(images, boxes, crops, side_out)


def _noisy(seen: tf.Tensor, hp: dict[str, tf.Tensor], t: tf.Tensor, crops: int,
           pre) -> tf.Tensor:
    """The crops ``[B * crops, S, S, 3]`` with each image's ``crop_noise`` added, in pixel
    units scaled as the model's input: normal with that std plus uniform of that width, as
    MaCo adds. Each image draws its noise from its own key and the step (:func:`_uniform_bits`),
    so its numbers do not depend on its batch-mates, nor on XLA."""
    def noisy() -> tf.Tensor:
        n = tf.size(seen) // tf.shape(hp["noise_key"])[0]
        bits = _uniform_bits(hp["noise_key"], t, n, 3)  # 3 x [B, n]
        normal = tf.sqrt(-2.0 * tf.math.log(bits[0])) * tf.cos(2.0 * np.pi * bits[1])
        amp = hp["crop_noise"][:, None] * 255.0
        noise = tf.reshape((normal + bits[2] - 0.5) * amp, tf.shape(seen))
        return seen + noise / pre.input_std

    return tf.cond(tf.reduce_any(hp["crop_noise"] > 0.0), noisy, lambda: seen)


def _mixed(x: tf.Tensor) -> tf.Tensor:
    """A 32-bit integer hash (Wellons' lowbias32): each output bit depends on every input bit."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16)) * tf.constant(0x7FEB352D,
                                                                                tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15)) * tf.constant(0x846CA68B,
                                                                                tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _uniform_bits(keys: tf.Tensor, t: tf.Tensor, n: tf.Tensor, draws: int) -> list[tf.Tensor]:
    """``draws`` tensors ``[B, n]`` of uniforms in (0, 1), a counter-based hash of each image's
    key, the step and the element's index. TensorFlow's stateless generators draw other numbers
    under XLA; integer arithmetic is the same everywhere."""
    base = _mixed(tf.bitwise.bitwise_xor(tf.cast(keys, tf.uint32),
                                         _mixed(tf.cast(t, tf.uint32) + 0x9E3779B9)))
    bits = _mixed(tf.bitwise.bitwise_xor(tf.cast(tf.range(n), tf.uint32)[None], base[:, None]))
    out = []
    for k in range(draws):
        if k:
            bits = _mixed(bits + tf.constant(0x68E31DA4, tf.uint32))
        top = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32)  # 24 bits: exact in float32
        out.append((top + 0.5) / 2.0**24)
    return out


def _resized(images: tf.Tensor, side: int) -> tf.Tensor:
    """The whole image at ``side`` pixels (antialiased when it shrinks)."""
    return tf.image.resize(images, [side, side], method="bilinear", antialias=True)
