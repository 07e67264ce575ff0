"""Study lifecycle: open or resume a study, requeue what a crash left, run trials until
``n_trials`` count, several trials at a time, in one or several worker processes.

A run asks Optuna for a population of trials (``study.population``), hands them to
:class:`vissearch.trials.Recorder`, which renders them together and tells each one, and asks
again. While trials run, a heartbeat thread marks them alive, so that when a worker is killed
another one (or the next run) finds its trials stale, fails them and runs their settings again
(Optuna's ``RetryHeartbeatStaleTrialCallback``); Ctrl-C fails the running trials without an
error, and the next run enqueues their settings again. :data:`SAMPLERS` and :data:`PRUNERS` are
the registries the config's ``study.sampler`` and ``study.pruner`` name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
from tqdm import tqdm

from vissearch import recipes, recovery, runconfig, trials
from vissearch.engine import seeds
from vissearch.errors import StoreUnreachable, UserError
from vissearch.runconfig import RunConfig
from vissearch.scoring import scores
from vissearch.study import store

SAMPLERS: dict[str, Callable[[RunConfig, int], optuna.samplers.BaseSampler]] = {
    "random": lambda cfg, seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda cfg, seed: optuna.samplers.TPESampler(seed=seed),
    # one Sobol sequence shared by all workers: the study seed on purpose
    "qmc": lambda cfg, seed: optuna.samplers.QMCSampler(qmc_type="sobol", seed=cfg.study.seed),
    "grid": lambda cfg, seed: optuna.samplers.GridSampler(cfg.space.grid(), seed=seed),
}
PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20),
    "hyperband": optuna.pruners.HyperbandPruner,
}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL)


def prepare(cfg: RunConfig) -> trials.Prepared:
    """Everything a run checks before its study exists: the results folder can be written, the
    model and the judge load, the target fits the model."""
    store.check_results(cfg.study)
    return trials.prepare(cfg)


def make_sampler(cfg: RunConfig, worker: int = 0, existing: int = 0
                 ) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded by the study seed, the worker and the trials already there
    (:func:`vissearch.engine.seeds.sampler_seed`)."""
    return SAMPLERS[cfg.study.sampler](cfg, seeds.sampler_seed(cfg.study.seed, worker, existing))


def open_or_create(cfg: RunConfig, worker: int = 0) -> optuna.Study:
    """Create the study, or resume it if it exists with the same config (n_trials may change)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a warm start that cannot be had is refused before the study or its folder exists
    warm = _warm_params(cfg) if cfg.study.warm_start and not store.trial_count(cfg.study) \
        else []
    url = store.storage_url(cfg.study)
    directions = [scores.SCORES[o].direction for o in cfg.study.objectives]
    study = optuna.create_study(
        study_name=cfg.study.name, storage=store.make_storage(url),
        sampler=make_sampler(cfg, worker), pruner=PRUNERS[cfg.study.pruner](),
        directions=directions, load_if_exists=True,
    )
    existing = len(study.get_trials(deepcopy=False))
    if existing:
        study.sampler = make_sampler(cfg, worker, existing)
    stored = study.user_attrs.get("config")
    if stored is None or (_comparable(stored) != _comparable(cfg.stored())
                          and not study.get_trials(deepcopy=False, states=FINISHED)):
        # a new study, or one whose config changed before any trial finished: it adopts this
        study.set_user_attr("config", json.loads(json.dumps(cfg.stored())))
        study.set_user_attr("artifact_dir", str(store.artifact_dir(cfg.study.name,
                                                                  cfg.study.results)))
        if cfg.study.artifacts:
            study.set_user_attr("artifacts", cfg.study.artifacts)
        _warm_start(study, warm)
    elif (stored.get("study") or {}).get("storage") != cfg.stored()["study"].get("storage") \
            and _comparable(stored) == _comparable(cfg.stored()):
        study.set_user_attr("config", json.loads(json.dumps(cfg.stored())))  # a password out
    elif _comparable(stored) != _comparable(cfg.stored()):
        raise UserError(
            f"study {cfg.study.name!r} in {store.shown(url)} was made with another config; "
            "change study.name to start a new study (only study n_trials, timeout, storage and "
            "population may change on resume)"
        )
    return study


def _warm_params(cfg: RunConfig) -> list[tuple[dict, str, list[str]]]:
    """``study.warm_start``'s known settings as parameters of the space, each with where it came
    from and what was changed to fit: a value outside the space is clipped to it, a choice the
    space lacks is left to the sampler."""
    warm = []
    for settings, came in recipes.warm_settings(cfg.study.warm_start, cfg.model, cfg.target,
                                                cfg.path or "config", cfg.study):
        params, changes = recipes.to_params(settings, cfg.space, cfg.fixed)
        warm.append((params, came, changes))
    return warm


def _warm_start(study: optuna.Study, warm: list[tuple[dict, str, list[str]]]) -> None:
    """Enqueue the warm start's settings in a study that has no trial yet: they are its first
    trials, before the sampler's own draws; each change made to fit the space is printed."""
    if not warm or study.get_trials(deepcopy=False):
        return
    for params, came, changes in warm:
        study.enqueue_trial(params, user_attrs={"warm_start": came}, skip_if_exists=True)
        print(f"warm start: {came}" + (f" ({'; '.join(changes)})" if changes else ""),
              flush=True)


def _comparable(raw: dict) -> str:
    data = json.loads(json.dumps(raw))
    for key in ("n_trials", "timeout", "storage", "population"):
        data.get("study", {}).pop(key, None)
    model = data.get("model", {})
    for key in ("path", "weights"):  # a file found beside the config is the same file
        if isinstance(model.get(key), str) and "/" in model[key]:
            model[key] = model[key].rsplit("/", 1)[-1]
    return json.dumps(data, sort_keys=True)


def _counts(t: optuna.trial.FrozenTrial) -> bool:
    attrs = t.user_attrs
    return t.state in FINISHED and (t.state != optuna.trial.TrialState.FAIL or (
        "error" in attrs and "surplus" not in attrs and "interrupted" not in attrs))


def counted(study: optuna.Study) -> int:
    """Trials that count toward ``n_trials``: complete, pruned, or failed with a recorded error.

    A trial whose worker was killed or interrupted fails with no error recorded; it does not
    count, and its settings run again (enqueued by the storage's heartbeat callback, or by
    :func:`vissearch.recovery.requeue_interrupted` at the next start). A surplus trial (asked
    when other processes had already started the last ones) does not count either.
    """
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED) if _counts(t))


def _claimed(known: list[optuna.trial.FrozenTrial]) -> list[int]:
    """The numbers of the trials that count or will: counted, running, or waiting to run (a
    retry), in order; the first ``n_trials`` of them are the study's, in every process."""
    live = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    return sorted(t.number for t in known if _counts(t) or t.state in live)


def run(cfg: RunConfig, worker: int = 0, progress: bool = True,
        budget_trials: int | None = None, prepared: trials.Prepared | None = None
        ) -> optuna.Study:
    """Run until ``n_trials`` trials count in all (earlier runs and other workers included).

    ``budget_trials`` caps the trials this process starts (the share of one of several
    workers). The model, the judge and the target are checked before the study is created.
    """
    prepared = prepared or prepare(cfg)
    study = open_or_create(cfg, worker)
    beat = recovery.Heartbeat(study)
    recovery.fail_stale(study, beat)
    recovery.requeue_interrupted(study)
    strays = recovery.remove_strays(study)
    if strays and not worker:
        folder = Path(study.user_attrs["artifact_dir"]).parent
        print(f"removed {len(strays)} files that killed writes left in {folder}", flush=True)
    done = counted(study)
    if done >= cfg.study.n_trials:
        print(f"study {cfg.study.name}: {done} of {cfg.study.n_trials} trials already finished")
        return study
    again = sum(t.state == optuna.trial.TrialState.WAITING and _is_retry(t)
                for t in study.get_trials(deepcopy=False))
    if (done or again) and not worker:
        print(f"resuming study {cfg.study.name}: {done} of {cfg.study.n_trials} trials done"
              + (f"; {again} killed or interrupted trials render again" if again else ""),
              flush=True)
    recorder = trials.Recorder(cfg, prepared, store.artifact_store(study))
    size = prepared.population
    bar = tqdm(total=cfg.study.n_trials, initial=done, unit="trial", desc=cfg.study.name,
               disable=not progress, mininterval=1.0,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}{postfix}]")
    with beat:
        try:
            _loop(cfg, study, recorder, beat, bar, size, budget_trials or 4 * cfg.study.n_trials)
        finally:
            bar.close()
    return study


def _loop(cfg, study, recorder, beat, bar, size: int, left: int) -> None:
    """Ask, render and tell populations until ``n_trials`` count. ``left`` caps the new trials
    this process starts; waiting retries are always taken. With nothing to start while other
    processes still run trials, it waits: one of them may die and leave its trials to retry."""
    deadline = time.monotonic() + (cfg.study.timeout or float("inf"))
    n_trials = cfg.study.n_trials
    while time.monotonic() < deadline:
        with store.quiet_experimental():
            optuna.storages.fail_stale_trials(study)  # another worker's killed trials
        known = study.get_trials(deepcopy=False)
        beat.adopt(known)
        done = sum(_counts(t) for t in known)
        if done >= n_trials:
            return
        waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in known)
        room = max(n_trials - len(_claimed(known)), 0)
        want = min(size, waiting + min(room, max(left, 0)))
        if want == 0:
            if not any(t.state == optuna.trial.TrialState.RUNNING for t in known):
                return  # this process's share is done, and no one else is running
            time.sleep(store.HEARTBEAT_S)
            continue
        asked = [_ask(study) for _ in range(want)]
        beat.watch(asked)  # at once: a trial never beaten waits to be adopted (Heartbeat.adopt)
        now = {t.number: t for t in study.get_trials(deepcopy=False)}
        kept = _drop_surplus(study, asked, set(_claimed(list(now.values()))[:n_trials]))
        beat.unwatch([t for t in asked if t not in kept])
        asked = kept
        left -= sum(not _is_retry(now[t.number]) for t in asked)
        if not asked:
            continue
        start = time.perf_counter()
        recorder.on_progress = None if bar.disable else _mover(bar, done, len(asked))
        try:
            recorder.run(study, asked)
        except BaseException as err:  # Ctrl-C, or a failure to record: the next run retries
            untold = _put_back(study, asked, recorder.told, err)
            if isinstance(err, KeyboardInterrupt):
                raise Interrupted(f"{len(untold)} running trials recorded FAIL (error: "
                                  "interrupted); run the same command to render them "
                                  "again") from None
            if isinstance(err, StoreUnreachable):
                n = len(untold)
                raise StoreUnreachable(f"{err}; {n} trial{'s' * (n != 1)} put back (not "
                                       "counted): run the same command once it answers") \
                    from None
            raise
        finally:
            beat.unwatch(asked)
        _progress(cfg, study, bar, (time.perf_counter() - start) / len(asked))


def _put_back(study: optuna.Study, asked: list[optuna.Trial], told: set[int],
              err: BaseException) -> list[optuna.Trial]:
    """Tell FAIL, marked interrupted (not counted; the next run renders them again), the asked
    trials that were not told; returns them."""
    untold = [t for t in asked if t.number not in told]
    reason = str(err)[:500] if isinstance(err, StoreUnreachable) else "interrupted"
    for trial in untold:
        trial.set_user_attr("error", reason)
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return untold


def _is_retry(t: optuna.trial.FrozenTrial) -> bool:
    """A trial that repeats a killed or interrupted one (ours or Optuna's heartbeat callback's)."""
    return trials.origin(t) != t.number


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a population: what happened to its trials is the message."""


def _drop_surplus(study: optuna.Study, asked: list[optuna.Trial], first: set[int]
                  ) -> list[optuna.Trial]:
    """Tell FAIL (marked surplus, not counted, never retried) the asked trials that are not among
    the ``first`` n_trials claimed: processes that asked at the same moment cannot overshoot."""
    keep = []
    for trial in asked:
        if trial.number in first:
            keep.append(trial)
        else:
            trial.set_user_attr("surplus", True)
            trial.set_user_attr("error", "surplus: other processes had started the last trials")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return keep


def _mover(bar: tqdm, done: int, size: int) -> Callable[[int, int], None]:
    """Move the bar within a population: ``size`` trials a share of the way through their
    steps (tqdm's estimate of the time left follows)."""
    def on_progress(step: int, total: int) -> None:
        bar.n = round(done + size * min(step / max(total, 1), 1.0), 2)
        bar.set_postfix_str(f"population of {size}: step {step}/{total}", refresh=False)
        bar.refresh()

    return on_progress


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():  # "heartbeat is supposed to be used with optimize": we beat
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


def _progress(cfg: RunConfig, study: optuna.Study, bar: tqdm, seconds: float) -> None:
    first = cfg.study.objectives[0]
    sign = 1 if scores.SCORES[first].direction == "maximize" else -1
    done = counted(study)
    bar.n = min(done, cfg.study.n_trials)
    post = {}
    values = [t.values[0] for t in study.get_trials(deepcopy=False, states=FINISHED[:1])
              if t.values and np.isfinite(t.values[0])]
    if values:
        post["best_" + first] = f"{sign * max(sign * v for v in values):.4g}"
    post["s/trial"] = f"{seconds:.1f}"
    bar.set_postfix(post)


def shares(remaining: int, workers: int) -> list[int]:
    """Split the remaining trials between workers as evenly as possible."""
    return [remaining // workers + (i < remaining % workers) for i in range(workers)]


def run_workers(cfg: RunConfig, workers: int, progress: bool = True) -> optuna.Study:
    """Run the study in ``workers`` processes on this machine: this one and ``workers - 1``
    started with ``python -m vissearch run``; each worker's sampler is seeded apart."""
    most = max(1, min(4 * (os.cpu_count() or 1), runconfig.memory_bytes() // 2**30))
    if not 1 <= workers <= most:
        raise UserError(f"--workers {workers}: give 1 to {most} (4 per CPU core, and 1 GiB of "
                        "memory each: every worker loads the model); more machines share a "
                        "study through a database (study.storage)")
    if workers == 1:
        return run(cfg, progress=progress)
    url = store.storage_url(cfg.study)
    prepared = prepare(cfg)  # a mistake is one line before the study exists
    study = open_or_create(cfg)  # one process creates the study; the others join
    parts = shares(max(cfg.study.n_trials - counted(study), 0), workers)
    with tempfile.TemporaryDirectory() as tmp:
        path = cfg.path
        if path is None:  # a config built in Python: the workers read it from a file
            path = f"{tmp}/config.json"
            with open(path, "w", encoding="utf-8") as f:
                json.dump(cfg.raw, f)
        # the storage URL goes in the environment, not the command line (ps shows every
        # user the command lines, passwords included)
        env = {**os.environ, "VISSEARCH_STORAGE": url}
        others = [subprocess.Popen([sys.executable, "-m", "vissearch", "run", path,
                                    "--no-progress", "--worker-index", str(i),
                                    "--budget", str(parts[i])], stdout=subprocess.DEVNULL,
                                   env=env)
                  for i in range(1, workers) if parts[i]]
        study = run(cfg, progress=progress, budget_trials=parts[0] or None, prepared=prepared)
        codes = [p.wait() for p in others]
    if any(codes):
        print(f"workers exited with {codes}; this process runs what they left", file=sys.stderr)
    if counted(study) < cfg.study.n_trials:  # a worker died before its share, or left retries
        study = run(cfg, progress=progress, prepared=prepared)
    return study


