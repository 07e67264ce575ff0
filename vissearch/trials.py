"""Trial records: what one trial drew, rendered and scored, and the one state it ends in.

``(asked trials) => settings => rendered together => recorded => told``. Trials of one structure
render as one population (:func:`vissearch.engine.render.render_population`); each then records its
seed, settings, versions, scores, per-target activations, loss curve, images and, when it
stopped early, the step and the reason, and is told COMPLETE, PRUNED or FAIL (with its error).
A trial never takes the study down with it.

Pruning comes from two places: Optuna's pruner (``study.pruner``, one objective) watches each
trial's curve, and successive halving (``study.halving``) compares the trials of a population at
its rungs by the first objective. Either way the trial keeps the images it had, and reproduce
renders it again up to the same step.
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.artifacts import upload_artifact

from vissearch.engine import budget, halving, hparams, render, seeds
from vissearch.errors import INTERRUPT, StoreUnreachable
from vissearch.imageio import write_png
from vissearch.models import resolve as models
from vissearch.models import zoo
from vissearch.models.loaded import LoadedModel
from vissearch.runconfig import RunConfig
from vissearch.scoring import evaluate, scores
from vissearch.settings.config import RenderSettings

CURVE_POINTS = 100  # loss-curve samples stored per target
PRUNED, FAIL = optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from vissearch import __version__

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "optuna": optuna.__version__,
            "numpy": np.__version__, "vissearch": __version__}


def origin(trial: optuna.trial.FrozenTrial) -> int:
    """The first trial of a retry chain (ours or Optuna's heartbeat callback's)."""
    return trial.user_attrs.get("retry_of", trial.system_attrs.get("failed_trial", trial.number))


@dataclass
class Prepared:
    """What a run needs before its first trial, loaded and checked before the study exists."""

    loaded: LoadedModel
    evaluator: evaluate.Evaluator
    population: int


def prepare(cfg: RunConfig) -> Prepared:
    """Load the model and the judge and check the target against the model, so that a mistake
    is one line before any study is created (a typo never leaves a study behind)."""
    loaded = models.load_for(cfg.model, cfg.target)
    judge = zoo.default_judge(cfg.model.name, cfg.model.path, cfg.model.judge)
    evaluator = evaluate.Evaluator(loaded, cfg.target, judge)  # checks the target, loads judge
    size = budget.population(cfg.study.population, cfg.fixed, cfg.target, loaded)
    return Prepared(loaded, evaluator, size)


class Recorder:
    """Turns asked trials into recorded, told trials for one study and one loaded model."""

    def __init__(self, cfg: RunConfig, prepared: Prepared, artifacts):
        self.cfg, self.artifacts = cfg, artifacts
        self.loaded, self.evaluator = prepared.loaded, prepared.evaluator
        self.versions = versions()
        self.told: set[int] = set()
        # (step, total steps) as a population renders: the run's progress bar moves with it
        self.on_progress: Callable[[int, int], None] | None = None

    def run(self, study: optuna.Study, asked: list[optuna.Trial]) -> None:
        """Draw every asked trial's settings, render each structure's trials together, record
        and tell each one."""
        frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
        groups: dict[tuple, list] = defaultdict(list)
        for trial in asked:
            try:
                settings = self._draw(trial, frozen[trial.number])
            except Exception as err:
                self.fail(study, trial, err)
                continue
            groups[hparams.structure(settings)].append((trial, settings))
        for group in groups.values():
            self._render(study, group)

    def _draw(self, trial: optuna.Trial, frozen: optuna.trial.FrozenTrial) -> RenderSettings:
        cfg = self.cfg
        first = origin(frozen)  # a retry renders with the seed of the trial it repeats
        seed = seeds.trial_seed(cfg.study.seed, first)
        if first != trial.number:
            trial.set_user_attr("retry_of", first)
        trial.set_user_attr("seed", seed)
        settings = cfg.settings(cfg.space.suggest(trial, cfg.fixed), seed)
        trial.set_user_attr("settings", settings.model_dump())
        trial.set_user_attr("versions", self.versions)
        return settings

    def _render(self, study: optuna.Study, group: list) -> None:
        trials = [t for t, _ in group]
        members = [render.Member(s, self._watched(self._pruner(t) if self._prunes() else None,
                                                  s.total_steps * s.candidates))
                   for t, s in group]
        rungs, on_rung = self._halving(group)
        start = time.perf_counter()
        try:
            results = render.render_population(self.loaded, self.cfg.target, members, rungs,
                                               on_rung)
        except Exception as err:
            for trial in trials:
                self.fail(study, trial, err)
            return
        seconds = (time.perf_counter() - start) / len(group)
        for trial, result in zip(trials, results, strict=True):
            self.finish(study, trial, result, seconds, [t.number for t in trials])

    def _prunes(self) -> bool:
        """Single-objective studies report each trial's curve (Optuna's pruners read it)."""
        return len(self.cfg.study.objectives) == 1

    def _watched(self, callback: render.WindowCallback | None, total: int
                 ) -> render.WindowCallback:
        """``callback`` that also reports the step to :attr:`on_progress` and stops the render
        where a Ctrl-C was pressed that Python dropped (:data:`~vissearch.errors.INTERRUPT`).
        It only watches: the images do not depend on it."""
        def on_window(step: int, values: np.ndarray) -> bool:
            if INTERRUPT.is_set():
                raise KeyboardInterrupt
            if self.on_progress is not None:
                self.on_progress(step, total)
            return callback(step, values) if callback is not None else False

        return on_window

    @staticmethod
    def _pruner(trial: optuna.Trial) -> render.WindowCallback:
        def on_window(step: int, values: np.ndarray) -> bool:
            trial.report(float(np.nanmean(values)), step)
            return trial.should_prune()

        return on_window

    def _halving(self, group: list) -> tuple[tuple[int, ...], render.RungCallback | None]:
        spec = self.cfg.study.halving
        if spec is None or len(group) < 2:
            return (), None
        s = group[0][1]
        rungs = halving.rung_steps(tuple(spec.rungs), s.total_steps,
                                   s.early_stop_window or 10)
        names = self.cfg.study.objectives
        maximize = tuple(scores.SCORES[n].direction == "maximize" for n in names)

        def on_rung(step: int, interim: dict) -> set[int]:
            values = {k: tuple(self._score(scores.SCORES[n], r) for n in names)
                      for k, r in interim.items()}
            for k, value in values.items():
                trial = group[k][0]
                log = trial.user_attrs.get("rungs", [])
                trial.set_user_attr("rungs", [*log, {"step": step, **dict(zip(names, value,
                                                                             strict=True))}])
            return set(values) - halving.survivors(values, spec.keep, maximize)

        return rungs, on_rung

    def _score(self, score: scores.Score, result: render.RenderResult) -> float:
        return float(score.fn(result, self.evaluator) if score.needs_models else score.fn(result))

    def finish(self, study: optuna.Study, trial: optuna.Trial, result: render.RenderResult,
               seconds: float, population: list[int]) -> None:
        """Record the trial and tell its state: PRUNED when it stopped early, FAIL when its
        objective is not a finite number, COMPLETE otherwise. An object store that does not
        answer raises :class:`StoreUnreachable` instead (the trial is left untold)."""
        try:
            computed = self.record(trial, result, seconds, population)
            if result.stopped in ("pruned", "callback"):
                self._tell(study, trial, state=PRUNED)
                return
            if result.failed.all():
                raise FloatingPointError("every target met NaN or inf")
            values = [computed[name] for name in self.cfg.study.objectives]
            bad = [n for n, v in zip(self.cfg.study.objectives, values, strict=True)
                   if not np.isfinite(v)]
            if bad:
                raise FloatingPointError(f"objective {bad[0]} is {computed[bad[0]]}")
            self._tell(study, trial, values=values[0] if len(values) == 1 else values)
        except StoreUnreachable:
            raise  # not the settings' fault: the run stops and the trial runs again
        except Exception as err:
            self.fail(study, trial, err)

    def fail(self, study: optuna.Study, trial: optuna.Trial, err: BaseException) -> None:
        """Record the error and end the trial FAIL."""
        trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
        self._tell(study, trial, state=FAIL)

    def _tell(self, study: optuna.Study, trial: optuna.Trial, **kwargs) -> None:
        study.tell(trial, **kwargs)
        self.told.add(trial.number)

    def record(self, trial: optuna.Trial, result: render.RenderResult, seconds: float,
               population: list[int]) -> dict[str, float]:
        """Every record of a rendered trial; returns its scores."""
        idx = [str(i) for i in result.indices]
        computed = scores.compute(result, self.evaluator)
        trial.set_user_attr("scores", computed)
        trial.set_user_attr("activations", dict(zip(idx, map(float, result.activations),
                                                    strict=True)))
        trial.set_user_attr("dead", [i for i, d in zip(idx, result.dead, strict=True) if d])
        trial.set_user_attr("failed", [i for i, f in zip(idx, result.failed, strict=True) if f])
        trial.set_user_attr("curve", _thin(result.curves))
        trial.set_user_attr("steps_run", int(result.steps_run))
        if result.stopped:
            trial.set_user_attr("stopped", {"reason": result.stopped, "step": result.steps_run})
        if result.picked is not None:  # candidates: each target's kept seed, and the scores
            seed = result.settings.seed
            trial.set_user_attr("picked", {i: seed + int(k) for i, k in zip(idx, result.picked,
                                                                            strict=True)})
            trial.set_user_attr("pick_scores", {
                i: [None if np.isnan(v) else float(v) for v in col]
                for i, col in zip(idx, result.pick_scores.T, strict=True)})
        trial.set_user_attr("render_seconds", round(seconds, 3))
        trial.set_user_attr("population", population)
        trial.set_user_attr("images", self._upload(trial, result))
        return computed

    def _upload(self, trial: optuna.Trial, result: render.RenderResult) -> dict:
        """Each image as an Optuna artifact (the dashboard's), also named in the trial's folder
        ``trials/NNNN/`` for people and notebooks (a hard link: the bytes are stored once)."""
        folder = f"trials/{trial.number:04d}"
        ids: dict = {"targets": {}, "files": {}, "captions": {}}
        for (key, name, image), caption in zip(result.files(), ["", *result.captions()],
                                               strict=True):
            with tempfile.TemporaryDirectory() as tmp:
                path = write_png(Path(tmp) / name, image)
                aid = upload_artifact(artifact_store=self.artifacts, file_path=str(path),
                                      study_or_trial=trial, mimetype="image/png")
            self.artifacts.name(aid, f"{folder}/{name}")
            ids["files"][key] = f"{folder}/{name}"
            if key == "grid":
                ids["grid"] = aid
            else:
                ids["targets"][key] = aid
                ids["captions"][key] = caption
        return ids


def _thin(curves: np.ndarray) -> dict:
    """Per-target curves at no more than CURVE_POINTS steps (NaN as None, for JSON)."""
    n = curves.shape[0]
    steps = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int)) if n else []
    picked = curves[steps] if n else curves
    return {"steps": [int(s) + 1 for s in steps],
            "values": [[None if not np.isfinite(v) else round(float(v), 6) for v in row]
                       for row in picked.T]}
