"""The bridge between Optuna and the render engine: one trial = one batched render.

Each trial samples its settings, renders every target in one batch, computes all scores, and
records params, scores, per-target values, the loss curve, the seed, versions, wall time and its
images (artifacts). Optuna catches a failing trial and records it FAIL with its error, and the
study goes on.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.artifacts import upload_artifact
from tqdm import tqdm

from vissearch import evaluate, models, objectives, scores, store, zoo
from vissearch.errors import UserError
from vissearch.imageio import write_png
from vissearch.render import RenderResult, render
from vissearch.runconfig import RunConfig

CURVE_POINTS = 100  # loss-curve samples stored per target


def trial_seed(study_seed: int, number: int) -> int:
    """The render seed of trial ``number``: fixed by the study seed, distinct per trial."""
    return (study_seed * 1_000_003 + number * 7919) % (2**31 - 1)


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from vissearch import __version__

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "optuna": optuna.__version__,
            "numpy": np.__version__, "vissearch": __version__}


def make_sampler(
    cfg: RunConfig, worker: int = 0, existing: int = 0
) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded by the study seed, the worker and the trials already there.

    Workers sharing one seed would draw the same settings, and so would a resumed run that
    started its sampler afresh; mixing in both keeps every draw new and still reproducible.
    """
    seed = (cfg.study.seed + 7919 * worker + 1_000_003 * existing) % (2**32)
    kind = cfg.study.sampler
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "qmc":  # one Sobol sequence shared by all workers: same seed on purpose
        return optuna.samplers.QMCSampler(qmc_type="sobol", seed=cfg.study.seed)
    return optuna.samplers.GridSampler(cfg.space.grid(), seed=seed)


def make_pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
    if cfg.study.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20)
    if cfg.study.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def open_or_create(cfg: RunConfig, worker: int = 0) -> optuna.Study:
    """Create the study, or resume it if it exists with the same config (n_trials may change)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = store.storage_url(cfg.study.name, cfg.study.storage, cfg.study.results)
    directions = [scores.SCORES[o].direction for o in cfg.study.objectives]
    study = optuna.create_study(
        study_name=cfg.study.name, storage=store.make_storage(url),
        sampler=make_sampler(cfg, worker),
        pruner=make_pruner(cfg), directions=directions, load_if_exists=True,
    )
    existing = len(study.get_trials(deepcopy=False))
    if existing:
        study.sampler = make_sampler(cfg, worker, existing)
    stored = study.user_attrs.get("config")
    if stored is None:
        study.set_user_attr("config", json.loads(json.dumps(cfg.stored())))
        study.set_user_attr("artifact_dir", str(store.artifact_dir(cfg.study.name,
                                                                  cfg.study.results)))
    elif _comparable(stored) != _comparable(cfg.stored()):
        raise UserError(
            f"study {cfg.study.name!r} in {url} was made with another config; change study.name "
            "to start a new study (only study n_trials, timeout and storage may change on resume)"
        )
    return study


def _comparable(raw: dict) -> str:
    data = json.loads(json.dumps(raw))
    for key in ("n_trials", "timeout", "storage"):
        data.get("study", {}).pop(key, None)
    return json.dumps(data, sort_keys=True)


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL)


def counted(study: optuna.Study) -> int:
    """Trials that count toward ``n_trials``: complete, pruned, or failed with a recorded error.

    A trial whose worker was killed or interrupted fails with no error recorded; it does not
    count, and its settings run again (enqueued by the storage's heartbeat callback, or by
    :func:`_requeue_interrupted` at the next start).
    """
    return _count(study.get_trials(deepcopy=False, states=FINISHED))


def _count(finished: list[optuna.trial.FrozenTrial]) -> int:
    return sum(1 for t in finished
               if t.state != optuna.trial.TrialState.FAIL or "error" in t.user_attrs)


def run(cfg: RunConfig, worker: int = 0, progress: bool = True,
        budget: int | None = None) -> optuna.Study:
    """Run until ``n_trials`` trials count in all (earlier runs and other workers included).

    ``budget`` caps the trials this process starts (the share of one of several workers).
    """
    study = open_or_create(cfg, worker)
    loaded = models.load(cfg.model, with_classifier=cfg.target.kind == "class")
    objectives.build(loaded, cfg.target)  # a bad target is the user's error, not 40 failed trials
    _fail_stale(study)
    _requeue_interrupted(study)
    done = counted(study)
    if done >= cfg.study.n_trials:
        print(f"study {cfg.study.name}: {done} of {cfg.study.n_trials} trials already finished")
        return study
    artifacts = store.AtomicArtifactStore(study.user_attrs["artifact_dir"])
    objective = TrialObjective(cfg, loaded, artifacts)
    bar = tqdm(total=cfg.study.n_trials, initial=done, unit="trial", desc=cfg.study.name,
               disable=not progress)
    try:
        study.optimize(objective, n_trials=budget or 4 * cfg.study.n_trials,
                       timeout=cfg.study.timeout,
                       catch=(Exception,), callbacks=[_stop_at(cfg.study.n_trials, bar, cfg)])
    finally:
        bar.close()
    return study


def shares(remaining: int, workers: int) -> list[int]:
    """Split the remaining trials between workers as evenly as possible."""
    return [remaining // workers + (i < remaining % workers) for i in range(workers)]


def _fail_stale(study: optuna.Study) -> None:
    """Give RUNNING trials left by a killed worker time to go stale, then fail and retry them.

    Trials of live workers keep their heartbeat and stay RUNNING.
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return
    deadline = time.monotonic() + store.GRACE_S + store.HEARTBEAT_S
    while time.monotonic() < deadline:
        with store.quiet_experimental():
            optuna.storages.fail_stale_trials(study)
        if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            return
        time.sleep(1.0)


def _origin(trial: optuna.trial.FrozenTrial) -> int:
    """The first trial of a retry chain (ours or Optuna's heartbeat callback's)."""
    return trial.user_attrs.get("retry_of", trial.system_attrs.get("failed_trial", trial.number))


def _requeue_interrupted(study: optuna.Study) -> None:
    """Enqueue the settings of trials that failed without an error (Ctrl-C, a kill that the
    heartbeat callback did not retry) and have no retry yet."""
    trials = study.get_trials(deepcopy=False)
    fail = optuna.trial.TrialState.FAIL
    covered = {_origin(t) for t in trials if t.state != fail}
    for t in trials:
        if t.state == fail and "error" not in t.user_attrs and t.params:
            if _origin(t) not in covered:
                study.enqueue_trial(t.params, user_attrs={"retry_of": _origin(t)})
                covered.add(_origin(t))


def _stop_at(n_trials: int, bar: tqdm, cfg: RunConfig):
    first = cfg.study.objectives[0]
    sign = 1 if scores.SCORES[first].direction == "maximize" else -1

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished = study.get_trials(deepcopy=False, states=FINISHED)  # one read per trial
        done = _count(finished)
        bar.n = min(done, n_trials)
        post = {"last": trial.state.name.lower()}
        values = [t.values[0] for t in finished if t.values and np.isfinite(t.values[0])]
        if values:
            post["best_" + first] = f"{sign * max(sign * v for v in values):.4g}"
        if trial.duration is not None:
            post["s/trial"] = f"{trial.duration.total_seconds():.1f}"
        bar.set_postfix(post)
        if done >= n_trials:
            study.stop()

    return callback


class TrialObjective:
    """Callable for ``study.optimize``: one trial, all its records."""

    def __init__(self, cfg: RunConfig, loaded: models.LoadedModel, artifacts):
        self.cfg, self.loaded, self.artifacts = cfg, loaded, artifacts
        self.versions = versions()
        judge = zoo.default_judge(cfg.model.name, cfg.model.path, cfg.model.judge)
        self.evaluator = evaluate.Evaluator(loaded, cfg.target, judge)

    def __call__(self, trial: optuna.Trial):
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as err:
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
            raise

    def _run(self, trial: optuna.Trial):
        cfg = self.cfg
        frozen = next(t for t in trial.study.get_trials(deepcopy=False)
                      if t.number == trial.number)
        origin = _origin(frozen)  # a retry renders with the seed of the trial it repeats
        seed = trial_seed(cfg.study.seed, origin)
        if origin != trial.number:
            trial.set_user_attr("retry_of", origin)
        settings = cfg.settings(cfg.space.suggest(trial, cfg.fixed), seed)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("settings", settings.model_dump())
        trial.set_user_attr("versions", self.versions)
        start = time.perf_counter()
        pruned = {"at": None}
        single = len(cfg.study.objectives) == 1

        def on_window(step: int, values: np.ndarray) -> bool:
            if not single:
                return False
            trial.report(float(np.nanmean(values)), step)
            if trial.should_prune():
                pruned["at"] = step
                return True
            return False

        result = render(self.loaded, cfg.target, settings, callback=on_window)
        self._record(trial, result, time.perf_counter() - start)
        if pruned["at"] is not None:
            raise optuna.TrialPruned(f"pruned at step {pruned['at']}")
        if result.failed.all():
            raise FloatingPointError("every target met NaN or inf")
        computed = trial.user_attrs["scores"]
        values = [computed[name] for name in cfg.study.objectives]
        bad = [n for n, v in zip(cfg.study.objectives, values, strict=True) if not np.isfinite(v)]
        if bad:
            raise FloatingPointError(f"objective {bad[0]} is {computed[bad[0]]} for this trial")
        return values[0] if single else values

    def _record(self, trial: optuna.Trial, result: RenderResult, seconds: float) -> None:
        idx = [str(i) for i in result.indices]
        trial.set_user_attr("scores", {**scores.compute(result), **self.evaluator(result)})
        trial.set_user_attr("activations", dict(zip(idx, map(float, result.activations),
                                                    strict=True)))
        trial.set_user_attr("dead", [i for i, d in zip(idx, result.dead, strict=True) if d])
        trial.set_user_attr("failed", [i for i, f in zip(idx, result.failed, strict=True) if f])
        trial.set_user_attr("curve", _thin(result.curves))
        trial.set_user_attr("steps_run", int(result.steps_run))
        trial.set_user_attr("render_seconds", round(seconds, 3))
        trial.set_user_attr("images", self._upload(trial, result))

    def _upload(self, trial: optuna.Trial, result: RenderResult) -> dict:
        ids: dict = {"targets": {}}
        with tempfile.TemporaryDirectory() as tmp:
            for name, image in result.files().items():
                path = write_png(Path(tmp) / name, image)
                aid = upload_artifact(artifact_store=self.artifacts, file_path=str(path),
                                      study_or_trial=trial, mimetype="image/png")
                if name == "grid.png":
                    ids["grid"] = aid
                else:
                    ids["targets"][name.removeprefix("target_").removesuffix(".png")] = aid
        return ids


def _thin(curves: np.ndarray) -> dict:
    """Per-target curves at no more than CURVE_POINTS steps (NaN as None, for JSON)."""
    n = curves.shape[0]
    steps = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int)) if n else []
    picked = curves[steps] if n else curves
    return {"steps": [int(s) + 1 for s in steps],
            "values": [[None if not np.isfinite(v) else round(float(v), 6) for v in row]
                       for row in picked.T]}
