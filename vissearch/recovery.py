"""Recovery: what a killed or interrupted run leaves, taken back up. Bridges Optuna and the files.

A worker's heartbeat thread keeps its running trials alive in the storage; a trial whose
heartbeat stops is failed after a grace period and its settings run again (Optuna's
``RetryHeartbeatStaleTrialCallback``, or :func:`requeue_interrupted` at the next start), and
the images such a trial had uploaded before it recorded them are deleted; so are, when no trial
is running, the files a kill left in the study's folder that no trial references (a ``.tmp``
of a write cut short, an image whose upload finished just before the kill).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
from pathlib import Path

import optuna

from vissearch import trials
from vissearch.study import objectstore, store

ARTIFACT_ATTR = "artifacts:"  # optuna.artifacts notes each upload as a trial system attribute
ARTIFACT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def rerun(t: optuna.trial.FrozenTrial) -> bool:
    """A failed trial whose settings run again: killed (no error) or interrupted."""
    return t.state == optuna.trial.TrialState.FAIL and (
        "error" not in t.user_attrs or "interrupted" in t.user_attrs)


class Heartbeat:
    """A thread that records a heartbeat for every watched trial every HEARTBEAT_S seconds.

    Optuna beats for trials run by ``study.optimize``; trials asked in populations need their
    own. Storage without heartbeats (journal, in-memory) is left alone.
    """

    def __init__(self, study: optuna.Study):
        self.storage = study._storage  # the study's own storage object (no public accessor)
        self.ids: set[int] = set()
        self.adopted: set[int] = set()
        self.lock, self.done = threading.Lock(), threading.Event()
        interval = getattr(self.storage, "get_heartbeat_interval", None)
        self.active = interval is not None and interval() is not None
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        if self.active:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        if self.active:
            self.thread.join()

    def watch(self, asked: list[optuna.Trial]) -> None:
        with self.lock:
            self.ids |= {t._trial_id for t in asked}  # trial ids have no public accessor
        self._record()

    def unwatch(self, asked: list[optuna.Trial]) -> None:
        with self.lock:
            self.ids -= {t._trial_id for t in asked}

    def adopt(self, known: list[optuna.trial.FrozenTrial]) -> None:
        """Beat once for every RUNNING trial of another worker seen for the first time.

        Optuna never fails a RUNNING trial that has no heartbeat at all: one whose worker died
        between asking it and its first beat would stay RUNNING for ever, and every worker
        would wait on it. After one beat here, such a trial goes stale like any killed
        worker's; a live worker's trial beats on, so the extra beat changes nothing.
        """
        if not self.active:
            return
        running = {t._trial_id for t in known if t.state == optuna.trial.TrialState.RUNNING}
        with self.lock:
            new = running - self.ids - self.adopted
            self.adopted |= new
        for trial_id in sorted(new):
            self.storage.record_heartbeat(trial_id)

    def _record(self) -> None:
        if not self.active:
            return
        with self.lock:
            ids = sorted(self.ids)
        for trial_id in ids:
            self.storage.record_heartbeat(trial_id)

    def _beat(self) -> None:
        while not self.done.wait(store.HEARTBEAT_S):
            self._record()


def fail_stale(study: optuna.Study, beat: Heartbeat) -> None:
    """Give RUNNING trials left by a killed worker time to go stale, then fail and retry them.

    Trials of live workers keep their heartbeat and stay RUNNING.
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if not running:
        return
    beat.adopt(running)  # one killed before its first beat goes stale too
    deadline = time.monotonic() + store.GRACE_S + store.HEARTBEAT_S
    while time.monotonic() < deadline:
        with store.quiet_experimental():
            optuna.storages.fail_stale_trials(study)
        if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            return
        time.sleep(1.0)


def requeue_interrupted(study: optuna.Study) -> None:
    """Enqueue the settings of trials that failed without an error (Ctrl-C, a kill that the
    heartbeat callback did not retry) and have no retry yet."""
    all_trials = study.get_trials(deepcopy=False)
    fail = optuna.trial.TrialState.FAIL
    covered = {trials.origin(t) for t in all_trials if t.state != fail}
    partial = []
    for t in all_trials:
        if not rerun(t):
            continue
        if t.params and trials.origin(t) not in covered:
            study.enqueue_trial(t.params, user_attrs={"retry_of": trials.origin(t)})
            covered.add(trials.origin(t))
        if "images" not in t.user_attrs and any(k.startswith(ARTIFACT_ATTR)
                                                for k in t.system_attrs):
            partial.append(t)
    if partial:
        artifacts = store.artifact_store(study)
        for t in partial:
            _remove_partial_images(study, artifacts, t)


def _remove_partial_images(study: optuna.Study, artifacts, trial: optuna.trial.FrozenTrial
                           ) -> None:
    """Delete the images a killed trial had uploaded before it recorded them (Optuna notes each
    upload on the trial): no file is left that no trial references. Its retry renders anew."""
    ids = [k.removeprefix(ARTIFACT_ATTR) for k in trial.system_attrs
           if k.startswith(ARTIFACT_ATTR)]
    for aid in ids:
        with contextlib.suppress(Exception):  # already gone, or another machine's bucket rule
            artifacts.remove(aid)
    folder = store.trial_folder(study, trial.number)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def remove_strays(study: optuna.Study) -> list[Path]:
    """Delete what a killed write left in the study's local folder: ``.tmp`` files
    (:mod:`vissearch.files`) and images uploaded by a trial killed before Optuna noted the
    upload on it (no trial references them). Only when no trial is running anywhere: a live
    worker's write in progress looks the same. The folder is listed before the trials are read,
    so a file that appears meanwhile is never taken. Object storage is left alone (its prefix
    may hold other studies' images). Returns the files removed."""
    base = study.user_attrs.get("artifact_dir")
    if not base or objectstore.is_remote(study.user_attrs.get("artifacts")):
        return []
    base = Path(base)
    if not base.is_dir():
        return []
    listed = [*base.iterdir(), *(f for d in base.parent.glob("trials/*") if d.is_dir()
                                 for f in d.iterdir())]
    known = study.get_trials(deepcopy=False)
    if any(t.state == optuna.trial.TrialState.RUNNING for t in known):
        return []
    own = study._storage.get_study_system_attrs(study._study_id)  # uploads to the study itself
    referenced = {k.removeprefix(ARTIFACT_ATTR) for attrs in [own, *(t.system_attrs
                                                                  for t in known)]
                  for k in attrs if k.startswith(ARTIFACT_ATTR)}
    for t in known:  # and whatever a trial recorded, whoever uploaded it
        images = t.user_attrs.get("images") or {}
        referenced |= {str(images.get("grid")), *map(str, images.get("targets", {}).values())}
    removed = []
    for path in listed:
        tmp = path.name.startswith(".") and path.name.endswith(".tmp")
        orphan = path.parent == base and ARTIFACT_ID.match(path.name) \
            and path.name not in referenced
        if (tmp or orphan) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
