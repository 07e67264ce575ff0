"""The render loop: batched gradient ascent in input space.

One compiled ``tf.function`` per step does the forward pass, the gradient, the update and the
in-graph regularizers for the whole batch; the host only reads the activations once per reporting
window (early stopping, pruning, progress). Everything random comes from one seeded
``tf.random.Generator``, so a seed fixes the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from vissearch import labels, objectives, param, transforms
from vissearch.config import RenderSettings, TargetSpec
from vissearch.errors import UserError
from vissearch.imageio import Preprocess, grid, to_uint8
from vissearch.loaded import LoadedModel

# Called every reporting window with (global step, current activations [B]); True stops the render.
WindowCallback = Callable[[int, np.ndarray], "bool | None"]


@dataclass
class RenderResult:
    """Images and measurements of one render, one entry per target index."""

    indices: list[int]
    inputs: np.ndarray  # [B, H, W, 3] model-input space
    activations: np.ndarray  # [B] objective of the kept image, no random transforms
    curves: np.ndarray  # [steps, B] objective at each step (NaN after an early stop)
    dead: np.ndarray  # [B] never above zero
    failed: np.ndarray  # [B] NaN or inf met
    preprocess: Preprocess
    settings: RenderSettings
    steps_run: int = 0
    seconds: float = 0.0
    stopped: str = ""  # "", "early" or "callback"
    kind: str = "filter"  # the target kind: class grids keep the order of the indices
    class_names: tuple[str, ...] | None = None  # the model's, for captions

    def captions(self) -> list[str]:
        """What is written under each target's grid cell: a class name or the index."""
        names = self.class_names if self.kind == "class" else None
        return [labels.caption(i, names) for i in self.indices]

    def pixels(self) -> np.ndarray:
        """Float RGB pixels ``[B, H, W, 3]`` (the exact inverse of preprocessing, unclipped)."""
        return self.preprocess.to_pixels(self.inputs)

    def pngs(self) -> list[np.ndarray]:
        """uint8 RGB images in the deprocess mode of the settings."""
        s = self.settings
        return [to_uint8(x, self.preprocess, s.png, s.png_std) for x in self.inputs]

    def ranking(self) -> list[int]:
        """Target positions for the grid, leaving out failed (and skipped dead) ones.

        Filters, layers and neurons come best activation first (the Keras example keeps the
        best 64 of 200); classes keep the order in which they were asked for.
        """
        keep = ~self.failed & ~(self.dead if self.settings.skip_dead else False)
        if self.kind == "class":
            return [i for i in range(len(self.indices)) if keep[i]]
        order = np.argsort(-np.nan_to_num(self.activations, nan=-np.inf), kind="stable")
        return [int(i) for i in order if keep[i]]

    def files(self) -> dict[str, np.ndarray]:
        """File name -> uint8 image: ``grid.png`` and ``target_<index>.png`` per target."""
        images = self.pngs()
        out = {"grid.png": self.grid_image(images)}
        for i, img in zip(self.indices, images, strict=True):
            out[f"target_{i}.png"] = img
        return out

    def grid_image(self, images: list[np.ndarray] | None = None) -> np.ndarray:
        """The grid of :meth:`ranking`, 5 px margin (``images``: :meth:`pngs`, if already made)."""
        images = self.pngs() if images is None else images
        order = self.ranking()
        if not order:
            return grid([np.zeros_like(images[0])], self.settings.grid)
        captions = self.captions()
        return grid([images[i] for i in order], self.settings.grid,
                    captions=[captions[i] for i in order])


def stage_plan(s: RenderSettings) -> list[tuple[int, int]]:
    """(image side, steps) for each stage of ascent.

    With upscaling the image starts at ``size / factor**K`` and is enlarged by ``factor`` after
    each of the K stages, ending at ``size`` (the Keras example: 9 stages, 1.2, 412 px).
    """
    k = s.upscale_stages
    if not k:
        return [(s.size, s.steps)]
    if s.steps < k:
        raise UserError(f"render.steps {s.steps} is fewer than render.upscale_stages {k}")
    per, extra = divmod(s.steps, k)
    sizes = [int(s.size / s.upscale_factor ** (k - i)) for i in range(k)]
    if sizes[0] < 8:
        raise UserError(
            f"render.upscale_stages {k} with factor {s.upscale_factor} starts at {sizes[0]} px; "
            "use fewer stages or a smaller factor"
        )
    return [(sz, per + (extra if i == k - 1 else 0)) for i, sz in enumerate(sizes)]


def render(
    loaded: LoadedModel,
    target: TargetSpec,
    settings: RenderSettings,
    callback: WindowCallback | None = None,
) -> RenderResult:
    """Render every target of ``target`` with ``settings``, ``batch_size`` images at a time."""
    if loaded.fixed_size and settings.size != loaded.fixed_size:
        raise UserError(
            f"render.size {settings.size} does not fit {loaded.label}, which takes "
            f"{loaded.fixed_size}x{loaded.fixed_size} images"
        )
    objective = objectives.build(loaded, target)
    start = time.perf_counter()
    bs = settings.batch_size
    steps = sum(n for _, n in stage_plan(settings))
    parts = []
    for k, first in enumerate(range(0, len(target.indices), bs)):
        chunk = target.indices[first : first + bs]
        gen = tf.random.Generator.from_seed(settings.seed + 1_000_003 * k)
        # later batches report after the earlier ones: steps count on across batches
        report = None if callback is None else _offset(callback, k * steps)
        parts.append(_Batch(objective, chunk, settings, loaded.preprocess, gen).run(report))
        if parts[-1]["stopped"] == "callback":
            break
    result = _merge(parts, target, settings, loaded.preprocess, time.perf_counter() - start)
    result.class_names = loaded.class_names
    return result


def _offset(callback: WindowCallback, start: int) -> WindowCallback:
    return lambda step, values: callback(start + step, values)


class _Batch:
    """One batch of images ascending their own targets together."""

    def __init__(self, objective, indices, s: RenderSettings, pre: Preprocess, gen):
        self.objective, self.s, self.pre, self.gen = objective, s, pre, gen
        self.idx = tf.constant(indices, tf.int32)
        self.plan = stage_plan(s)
        self.total = sum(n for _, n in self.plan)
        self.param = param.make(s, len(indices), self.plan[0][0], pre, gen)
        self.failed = tf.Variable(tf.zeros([len(indices)], tf.bool))
        self.best_x = self.best_val = None  # tracked in the last stage when keep == "best"

    def run(self, callback: WindowCallback | None) -> dict:
        s, acts, t, stopped = self.s, [], 0, ""
        window = s.early_stop_window or 10
        for k, (size, n) in enumerate(self.plan):
            if k:
                self.param.resized(size)
            last_stage = k == len(self.plan) - 1
            step = self._compile_step(track_best=last_stage and s.keep == "best")
            stage_acts = []
            for _ in range(n):
                stage_acts.append(step(tf.constant(t, tf.int64)))
                t += 1
                if t % window and t != self.total:
                    continue
                values = stage_acts[-1].numpy()
                if callback is not None and callback(t, values):
                    stopped = "callback"
                    break
                if s.early_stop_window and _stalled(stage_acts, window, s.early_stop_tol):
                    stopped = "early"
                    break
            acts.extend(stage_acts)
            if stopped == "callback":
                break
        return self._finish(acts, t, stopped)

    def _finish(self, acts: list, steps: int, stopped: str) -> dict:
        s = self.s
        images = self.param.images(self.best_x)
        if s.upscale_stages:
            images = tf.image.resize(images, [s.size, s.size], method="bicubic")
        final = self.objective(images, self.idx).numpy()
        curves = np.stack([a.numpy() for a in acts]) if acts else np.zeros((0, len(final)))
        failed = self.failed.numpy() | ~np.isfinite(final)
        return {"inputs": images.numpy(), "final": final, "curves": curves,
                "failed": failed, "steps": steps, "stopped": stopped}

    def _optimizer(self) -> keras.optimizers.Optimizer:
        s = self.s
        lr = _schedule(s, self.total)
        if s.optimizer == "sgd":
            opt = keras.optimizers.SGD(lr)
        elif s.optimizer == "nesterov":
            opt = keras.optimizers.SGD(lr, momentum=s.momentum, nesterov=True)
        elif s.optimizer == "rmsprop":
            opt = keras.optimizers.RMSprop(lr)
        else:
            opt = keras.optimizers.Adam(lr)
        opt.build([self.param.var])
        return opt

    def _compile_step(self, track_best: bool):
        s, pre, p, gen, idx = self.s, self.pre, self.param, self.gen, self.idx
        opt = self._optimizer()
        pixel = isinstance(p, param.PixelParam)
        rank = len(p.var.shape)
        axes = list(range(1, rank))
        robust = bool(s.jitter or s.scale or s.rotate)
        if track_best:
            self.best_x = tf.Variable(p.var)
            self.best_val = tf.Variable(tf.fill([len(idx)], -np.inf))
        regularize = _regularizer(s, pre, self.total) if pixel else None

        @tf.function
        def step(t):
            opt.iterations.assign(t)
            before = p.var.read_value()
            with tf.GradientTape() as tape:
                images = p.images()
                seen = images
                if robust:
                    seen = transforms.random_affine(images, gen, s.jitter, s.scale, s.rotate)
                act = self.objective(seen, idx)
                goal = act
                if s.tv:
                    goal = goal - s.tv * transforms.total_variation(pre.to_pixels(images) / 255.0)
                total = tf.reduce_sum(goal)
            grad = tape.gradient(total, p.var)
            ok = tf.math.is_finite(act) & tf.reduce_all(tf.math.is_finite(grad), axis=axes)
            mask = tf.reshape(ok, [-1] + [1] * (rank - 1))
            grad = tf.where(mask, grad, tf.zeros_like(grad))
            if s.normalize_grad:
                rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True))
                grad = grad / (rms + 1e-7)
            opt.apply_gradients([(-grad, p.var)])
            if regularize is not None:
                p.var.assign(regularize(p.var, grad, t))
            self.failed.assign(self.failed | ~ok)
            if track_best:
                better = ok & (act > self.best_val)
                better_x = tf.reshape(better, tf.shape(mask))
                self.best_x.assign(tf.where(better_x, before, self.best_x))
                self.best_val.assign(tf.where(better, act, self.best_val))
            return act

        return step


def _regularizer(s: RenderSettings, pre: Preprocess, total: int):
    """The in-place regularizers of the pixel image, in the blog's order, as one graph function."""
    lo, hi = 0.0, 255.0  # the variable holds RGB pixels
    center = tf.constant(pre.pixel_center)
    plain_from = total - s.plain_steps if s.keep == "plain" else total

    def every(t, n):
        return tf.logical_and(t < plain_from, tf.equal(t % n, 0))

    def apply(x, grad, t):
        def at(n, fn, x, gated=True):
            due = every(t, n) if gated else tf.equal(t % n, 0)
            return tf.cond(due, lambda: fn(x), lambda: x)

        if s.decay:
            x = at(s.decay_every, lambda v: center + (v - center) * (1 - s.decay), x)
        if s.blur_sigma:
            x = at(s.blur_every, lambda v: transforms.blur(v, s.blur_sigma), x)
        if s.median_size:
            x = at(s.median_every, lambda v: transforms.median(v, s.median_size), x)
        if s.norm_pct:
            norm = tf.norm(x - center, axis=-1)
            x = at(s.norm_pct_every,
                   lambda v: transforms.zero_below(v, norm, s.norm_pct, center), x)
        if s.contrib_pct:
            contrib = tf.abs(tf.reduce_sum((x - center) * grad, axis=-1))
            x = at(s.contrib_pct_every,
                   lambda v: transforms.zero_below(v, contrib, s.contrib_pct, center), x)
        if s.clip:
            x = at(s.clip_every, lambda v: tf.clip_by_value(v, lo, hi), x, gated=False)
        return x

    return apply


def _schedule(s: RenderSettings, total: int):
    sched = keras.optimizers.schedules
    if s.schedule == "constant":
        return s.lr
    if s.schedule == "step":
        return sched.ExponentialDecay(s.lr, s.lr_step_every, s.lr_step_gamma, staircase=True)
    if s.schedule == "cosine":
        return sched.CosineDecay(s.lr, max(total, 1), alpha=s.lr_final)
    end = s.lr * s.lr_final
    return sched.PolynomialDecay(s.lr, max(total, 1), end_learning_rate=end, power=1.0)


def _stalled(acts: list, window: int, tol: float) -> bool:
    """No image gained more than ``tol`` (relative) in the last window over its best before it."""
    if len(acts) < 2 * window:
        return False
    curve = np.stack([a.numpy() for a in acts])
    before = np.max(curve[:-window], axis=0)
    recent = np.max(curve[-window:], axis=0)
    improving = (recent - before) > tol * np.maximum(np.abs(before), 1e-12)
    return not bool(np.any(improving))


def _merge(parts, target: TargetSpec, s: RenderSettings, pre: Preprocess, seconds: float):
    steps = max(p["curves"].shape[0] for p in parts)
    curves = [np.pad(p["curves"], ((0, steps - p["curves"].shape[0]), (0, 0)),
                     constant_values=np.nan) for p in parts]
    final = np.concatenate([p["final"] for p in parts])
    curves = np.concatenate(curves, axis=1)
    n = len(final)
    dead = np.zeros(n, bool)
    if target.kind != "class":
        peak = np.nanmax(np.where(np.isfinite(curves), curves, -np.inf), axis=0, initial=-np.inf)
        dead = (peak <= 0) & (final <= 0)
    stopped = next((p["stopped"] for p in parts if p["stopped"]), "")
    return RenderResult(
        indices=list(target.indices[:n]),
        inputs=np.concatenate([p["inputs"] for p in parts]),
        activations=final,
        curves=curves,
        dead=dead,
        failed=np.concatenate([p["failed"] for p in parts]),
        preprocess=pre,
        settings=s,
        steps_run=steps,
        seconds=seconds,
        stopped=stopped,
        kind=target.kind,
    )
