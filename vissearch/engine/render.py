"""The render loop: batched gradient ascent in input space, for one trial or a population.

``render(model, target, settings)`` renders one trial's targets; ``render_population`` renders K
trials of one structure (:data:`vissearch.engine.hparams.STRUCTURE`) in one batch of ``K x
targets`` images, each image with its own settings (:mod:`vissearch.engine.hparams`). Both run the
same compiled step (:mod:`vissearch.engine.step`); the host reads the activations once per
reporting window, where a trial may stop: its callback asks to, early stopping finds it flat, or
successive halving drops it at a rung. A stopped trial's images are finished at once and its
rows leave the batch.

Everything random about an image comes from its trial's seed and its position among the targets,
and every operation acts on each image alone, so a trial's images do not depend on its
batch-mates (tests/engine/test_population.py checks this bit for bit).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from vissearch.engine import candidates, hparams, optimizers, step
from vissearch.engine.hparams import Row
from vissearch.engine.param import PARAMS
from vissearch.errors import UserError
from vissearch.imageio import Preprocess, grid, to_uint8
from vissearch.models import labels
from vissearch.models.loaded import LoadedModel
from vissearch.settings.config import RenderSettings, TargetSpec

# Called every reporting window with (global step, current activations [targets]); True stops.
WindowCallback = Callable[[int, np.ndarray], "bool | None"]
# Called at each halving rung with (step, {member: its images so far}); returns members to stop.
RungCallback = Callable[[int, dict], "set[int]"]


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
    stopped: str = ""  # "", "early", "callback" or "pruned"
    kind: str = "filter"  # the target kind: class grids keep the order of the indices
    class_names: tuple[str, ...] | None = None  # the model's, for captions
    picked: np.ndarray | None = None  # [B] with candidates: the candidate kept (seed + k)
    pick_scores: np.ndarray | None = None  # [candidates, B] what the pick compared

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

    def files(self) -> list[tuple[str, str, np.ndarray]]:
        """(key, file name, uint8 image): the grid (key ``grid``, ``grid.png``), then each
        target (key: its index; ``target_<index>.png``, with the class name when it has one:
        ``target_130_flamingo.png``)."""
        images = self.pngs()
        out = [("grid", "grid.png", self.grid_image(images))]
        for i, caption, img in zip(self.indices, self.captions(), images, strict=True):
            named = "" if caption == str(i) else "_" + labels.file_safe(caption)
            out.append((str(i), f"target_{i}{named}.png", img))
        return out

    def grid_image(self, images: list[np.ndarray] | None = None) -> np.ndarray:
        """The grid of :meth:`ranking` with captions, 5 px margin (``images``: :meth:`pngs`)."""
        images = self.pngs() if images is None else images
        order = self.ranking()
        if not order:
            return grid([np.zeros_like(images[0])], self.settings.grid)
        captions = self.captions()
        return grid([images[i] for i in order], self.settings.grid,
                    captions=[captions[i] for i in order])


def render(
    loaded: LoadedModel,
    target: TargetSpec,
    settings: RenderSettings,
    callback: WindowCallback | None = None,
    stop_at: int | None = None,
) -> RenderResult:
    """Render every target of ``target`` with ``settings``, ``batch_size`` images at a time.

    ``stop_at`` ends the render after that many steps (re-rendering a trial pruned there).
    With ``settings.candidates`` > 1, each target is rendered from that many seeds, one after
    another, and the image the judge prefers is kept (:mod:`vissearch.engine.candidates`).
    """
    _check_size(loaded, settings)
    if settings.candidates > 1:
        return _best_of(loaded, target, settings, callback, stop_at)
    start, parts = time.perf_counter(), []
    total = settings.total_steps
    bs = settings.batch_size
    for k, first in enumerate(range(0, len(target.indices), bs)):
        positions = range(first, min(first + bs, len(target.indices)))
        # later batches report after the earlier ones: steps count on across batches
        report = None if callback is None else _offset(callback, k * total)
        rows = [Row(settings, p, target.indices[p]) for p in positions]
        member = _Member(settings, list(range(len(rows))), report, stop_at)
        parts.append(_Population(loaded, target, rows, [member]).run()[0])
        if parts[-1].stopped == "callback":
            break
    return _merge(parts, target, settings, time.perf_counter() - start)


@dataclass
class Member:
    """One trial of a population: its settings, its window callback, and (to replay a
    population) the step at which it stopped and why."""

    settings: RenderSettings
    callback: WindowCallback | None = None
    stop_at: int | None = None
    stopped: str = ""


def render_population(loaded: LoadedModel, target: TargetSpec, members: list[Member],
                      rungs: tuple[int, ...] = (), on_rung: RungCallback | None = None
                      ) -> list[RenderResult]:
    """Render K trials of one structure together: ``K x targets`` images in one batch.

    At each step in ``rungs`` (a multiple of the reporting window), ``on_rung`` gets the
    images of every trial still running and names the trials to stop (``stopped="pruned"``).
    Returns one result per member, in order.
    """
    if not members:
        return []
    if any(m.settings.candidates > 1 for m in members):
        if rungs:
            raise UserError("render.candidates renders a trial's seeds one after another; it "
                            "cannot be halved with its population: leave study.halving out")
        # each trial's candidates one after another: its images do not depend on the others
        return [render(loaded, target, m.settings, m.callback, m.stop_at) for m in members]
    keys = {hparams.structure(m.settings) for m in members}
    if len(keys) > 1:
        raise ValueError(f"a population shares one structure; got {sorted(keys)}")
    _check_size(loaded, members[0].settings)
    start, n = time.perf_counter(), len(target.indices)
    rows = [Row(m.settings, p, i) for m in members for p, i in enumerate(target.indices)]
    group = [_Member(m.settings, list(range(k * n, (k + 1) * n)), m.callback, m.stop_at,
                     m.stopped) for k, m in enumerate(members)]
    results = _Population(loaded, target, rows, group, rungs, on_rung).run()
    seconds = time.perf_counter() - start
    return [_merge([r], target, m.settings, seconds) for r, m in zip(results, members,
                                                                   strict=True)]


def _best_of(loaded: LoadedModel, target: TargetSpec, settings: RenderSettings,
             callback: WindowCallback | None, stop_at: int | None) -> RenderResult:
    """Every target rendered from each candidate's seed; per target, the image the judge
    prefers (its curve, activation and flags come with it)."""
    if settings.judge and target.kind != "class":
        raise UserError(f"render.judge picks class images; a {target.kind} target's candidates "
                        "are compared by their activation: leave judge out")
    start, results = time.perf_counter(), []
    per_candidate = -(-len(target.indices) // settings.batch_size) * settings.total_steps
    for k, s in enumerate(candidates.seeds_of(settings)):
        report = None if callback is None else _offset(callback, k * per_candidate)
        results.append(render(loaded, target, s, report, stop_at))
        if results[-1].stopped == "callback":  # a trial stopped from outside ends here
            return dataclasses.replace(results[-1], settings=settings,
                                       seconds=time.perf_counter() - start)
    if target.kind == "class":
        judge = candidates.judge_model(settings.judge) if settings.judge else loaded
        scores = np.stack([candidates.tile_probability(judge, r.pngs(), r.indices)
                           for r in results])
    else:
        scores = np.stack([r.activations for r in results])
    failed = np.stack([r.failed for r in results])  # a failed image (NaN met) is never kept
    chosen = candidates.pick(np.where(failed, np.nan, scores))
    cols = np.arange(len(target.indices))
    steps = max(r.curves.shape[0] for r in results)
    curves = np.stack([np.pad(r.curves, ((0, steps - r.curves.shape[0]), (0, 0)),
                              constant_values=np.nan) for r in results])

    def kept(name: str) -> np.ndarray:
        return np.stack([getattr(r, name) for r in results])[chosen, cols]

    first = results[0]
    return RenderResult(
        indices=list(first.indices), inputs=kept("inputs"), activations=kept("activations"),
        curves=curves[chosen, :, cols].T, dead=kept("dead"), failed=kept("failed"),
        preprocess=first.preprocess, settings=settings, steps_run=steps,
        seconds=time.perf_counter() - start,
        stopped=next((r.stopped for r in results if r.stopped), ""), kind=first.kind,
        class_names=first.class_names, picked=chosen, pick_scores=scores)


def _check_size(loaded: LoadedModel, settings: RenderSettings) -> None:
    if loaded.fixed_size and settings.size != loaded.fixed_size:
        raise UserError(
            f"render.size {settings.size} does not fit {loaded.label}, which takes "
            f"{loaded.fixed_size}x{loaded.fixed_size} images"
        )


def _offset(callback: WindowCallback, start: int) -> WindowCallback:
    return lambda step, values: callback(start + step, values)


@dataclass
class _Member:
    settings: RenderSettings
    rows: list[int]  # its rows in the current batch
    callback: WindowCallback | None
    stop_at: int | None = None
    stopped: str = ""  # the reason recorded when it stops at stop_at
    curve: list = field(default_factory=list)  # activations per step, [n] each
    result: RenderResult | None = None


class _Population:
    """The loop over steps for a batch of rows; members leave it as they stop."""

    def __init__(self, loaded, target, rows, members, rungs=(), on_rung=None):
        self.loaded, self.target, self.rows, self.members = loaded, target, rows, members
        s = members[0].settings
        if target.kind != "class" and any(m.settings.rivals for m in members):
            raise UserError(f"render.rivals applies to class targets only, not to kind "
                            f"{target.kind} (leave it 0)")
        self.plan, self.total = s.stages(), s.total_steps
        self.rungs, self.on_rung = set(rungs), on_rung
        self.stops = {m.stop_at for m in members if m.stop_at is not None}
        self.window = s.early_stop_window or 10
        self.param = PARAMS[s.param]
        self.step, self.activation = step.get(loaded, target, s)
        self.hp = hparams.pack(rows, self.total)
        self.hp["uniforms"] = hparams.uniforms(rows, self.total)
        self.hp["crop_uniforms"] = hparams.crop_uniforms(rows, self.total, s.crops)

    def run(self) -> list[RenderResult]:
        x = tf.constant(self.param.start(self.rows, self.plan[0][0], self.loaded.preprocess))
        t, pending = 0, []
        for k, (side, n) in enumerate(self.plan):
            if k:  # a larger image: a fresh optimizer state, as the Keras example
                x = self.param.resized(x, side)
            failed = self.state["failed"] if k else None
            self.state = step.initial_state(x, failed)
            self.hp.update(self.param.stage(self.rows, side))
            self.hp["blur_kernel"] = hparams.blur_kernels(self.rows, side)
            self.hp_t = _tensors(self.hp)
            track = tf.constant(k == len(self.plan) - 1)
            for _ in range(n):
                x, self.state, act = self.step(x, self.state, self.hp_t, tf.constant(t), track)
                pending.append(act)
                t += 1
                if t % self.window and t != self.total and t not in self.stops:
                    continue
                x = self._window(x, t, pending)
                pending = []
                if not self._running():
                    return [m.result for m in self.members]
        for m in self._running():
            m.result = self._finish(x, m, t, "")
        return [m.result for m in self.members]

    def _running(self) -> list[_Member]:
        return [m for m in self.members if m.result is None]

    def _window(self, x: tf.Tensor, t: int, pending: list) -> tf.Tensor:
        """Record the window's activations; stop the members that are done; shrink the batch."""
        values = np.stack([a.numpy() for a in pending])  # [steps, B]
        stop: dict[int, str] = {}
        for k, m in enumerate(self.members):
            if m.result is not None:
                continue
            m.curve.extend(values[:, m.rows])
            if m.callback is not None and m.callback(t, values[-1, m.rows]):
                stop[k] = "callback"
            elif m.settings.early_stop_window and _stalled(np.array(m.curve), self.window,
                                                           m.settings.early_stop_tol):
                stop[k] = "early"
            elif t == m.stop_at:
                stop[k] = m.stopped
        if t in self.rungs and self.on_rung is not None:
            interim = {k: self._finish(x, m, t, "pruned") for k, m in enumerate(self.members)
                       if m.result is None and k not in stop}
            for k in self.on_rung(t, interim):
                stop[k] = "pruned"
                self.members[k].result = interim[k]
        for k, why in stop.items():
            m = self.members[k]
            if m.result is None:
                m.result = self._finish(x, m, t, why)
        return self._keep_running(x) if stop else x

    def _finish(self, x: tf.Tensor, m: _Member, t: int, stopped: str) -> RenderResult:
        """The member's kept images now: scored without random transforms."""
        rows = tf.constant(m.rows)
        hp = {k: tf.gather(v, rows) for k, v in self.hp_t.items()}
        mine = tf.gather(x, rows)
        best = tf.gather(self.state["best_x"], rows)
        images = self.param.images(optimizers.where(hp["keep_best"], best, mine), hp,
                                   self.loaded.preprocess)
        s = m.settings
        if s.upscale_stages:
            images = tf.image.resize(images, [s.size, s.size], method="bicubic")
        if s.frame < 1:  # the centre, where crops centred on it put the object
            a = (s.image_side - s.frame_side) // 2
            images = images[:, a:a + s.frame_side, a:a + s.frame_side, :]
        final = self.activation(images, hp["index"]).numpy()
        failed = tf.gather(self.state["failed"], rows).numpy() | ~np.isfinite(final)
        curves = np.array(m.curve).reshape(-1, len(m.rows))
        return RenderResult(
            indices=[self.rows[r].index for r in m.rows], inputs=images.numpy(),
            activations=final, curves=curves, dead=_dead(curves, final, self.target.kind),
            failed=failed, preprocess=self.loaded.preprocess, settings=s, steps_run=t,
            stopped=stopped, kind=self.target.kind, class_names=self.loaded.class_names)

    def _keep_running(self, x: tf.Tensor) -> tf.Tensor:
        """Drop the rows of stopped members from the batch, its state and its settings."""
        keep = [r for m in self._running() for r in m.rows]
        if not keep:
            return x
        idx = np.array(keep)
        new_pos = {old: new for new, old in enumerate(keep)}
        for m in self._running():
            m.rows = [new_pos[r] for r in m.rows]
        self.rows = [self.rows[i] for i in keep]
        self.hp = {k: v[idx] for k, v in self.hp.items()}
        self.hp_t = _tensors(self.hp)
        self.state = {k: tf.gather(v, idx) for k, v in self.state.items()}
        return tf.gather(x, idx)


def _tensors(hp: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    return {k: tf.constant(v) for k, v in hp.items()}


def _stalled(curve: np.ndarray, window: int, tol: float) -> bool:
    """No image gained more than ``tol`` (relative) in the last window over its best before it."""
    if len(curve) < 2 * window:
        return False
    before = np.max(curve[:-window], axis=0)
    recent = np.max(curve[-window:], axis=0)
    improving = (recent - before) > tol * np.maximum(np.abs(before), 1e-12)
    return not bool(np.any(improving))


def _dead(curves: np.ndarray, final: np.ndarray, kind: str) -> np.ndarray:
    if kind == "class":
        return np.zeros(len(final), bool)
    peak = np.nanmax(np.where(np.isfinite(curves), curves, -np.inf), axis=0, initial=-np.inf)
    return (peak <= 0) & (final <= 0)


def _merge(parts: list[RenderResult], target: TargetSpec, s: RenderSettings,
           seconds: float) -> RenderResult:
    """One result from the results of consecutive batches of the same trial."""
    if len(parts) == 1:
        parts[0].seconds = seconds
        return parts[0]
    steps = max(p.curves.shape[0] for p in parts)
    curves = [np.pad(p.curves, ((0, steps - p.curves.shape[0]), (0, 0)),
                     constant_values=np.nan) for p in parts]
    first = parts[0]
    return RenderResult(
        indices=[i for p in parts for i in p.indices],
        inputs=np.concatenate([p.inputs for p in parts]),
        activations=np.concatenate([p.activations for p in parts]),
        curves=np.concatenate(curves, axis=1),
        dead=np.concatenate([p.dead for p in parts]),
        failed=np.concatenate([p.failed for p in parts]),
        preprocess=first.preprocess, settings=s, steps_run=steps, seconds=seconds,
        stopped=next((p.stopped for p in parts if p.stopped), ""), kind=first.kind,
        class_names=first.class_names)
