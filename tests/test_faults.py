"""Runs that survive: kill -9 at random moments, then run again; several workers on one study.

Each worker is a real subprocess running ``python -m vissearch run``. PostgreSQL is used when
``VISSEARCH_TEST_PG`` holds a server URL (CI starts one); SQLite otherwise.
"""

import contextlib
import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import numpy as np
import optuna
import pytest
from PIL import Image

from vissearch import runner
from vissearch.study import store

CLI = [sys.executable, "-m", "vissearch"]
PG = os.environ.get("VISSEARCH_TEST_PG")


def write_config(tmp_path, tiny_path, name, n_trials, storage=None, **study):
    name = f"{name}-{uuid.uuid4().hex[:8]}"  # a PostgreSQL database outlives one test run
    cfg = {
        "study": {"name": name, "seed": 5, "n_trials": n_trials, "results": str(tmp_path / "res"),
                  "storage": storage, **study},
        "model": {"path": tiny_path, "preprocess": "none"},
        "target": {"kind": "class", "indices": [0, 1, 2]},
        "render": {"size": 24, "steps": 60},
        "search": {"lr": {"log_uniform": [0.5, 20.0]}, "median_size": {"choice": [0, 3]},
                   "optimizer": {"choice": ["sgd", "adam"]}},
    }
    path = tmp_path / f"{name}.json.yaml"
    path.write_text(json.dumps(cfg))
    return path, cfg


def load(cfg) -> optuna.Study:
    s = cfg["study"]
    return store.open_study(s["name"], s["storage"], s["results"])


def check_consistent(study: optuna.Study, n_trials: int) -> None:
    """n_trials complete; every killed trial's settings ran again; no broken image anywhere."""
    trials = study.get_trials()
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == n_trials == runner.counted(study)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    killed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL
              and ("error" not in t.user_attrs or t.user_attrs.get("interrupted"))]
    rerun = {t.user_attrs["retry_of"]: t.params for t in complete if "retry_of" in t.user_attrs}
    for t in (k for k in killed if k.params):  # one killed before sampling has nothing to rerun
        original = t.user_attrs.get("retry_of", t.number)
        again = rerun.get(original)
        # every setting the killed trial had drawn runs again; one killed between two draws
        # has the rest drawn anew
        assert again is not None, f"trial {t.number} was not run again"
        assert {k: again.get(k) for k in t.params} == t.params, (t.params, again)
    for t in complete:
        images = t.user_attrs["images"]
        for aid in [images["grid"], *images["targets"].values()]:
            path = store.artifact_path(study, aid)
            assert path is not None, f"trial {t.number} lost an image"
            with Image.open(path) as im:
                im.verify()  # a truncated PNG fails here
    base = study.user_attrs["artifact_dir"]
    for name in os.listdir(base):
        if not name.endswith(".tmp"):
            with Image.open(os.path.join(base, name)) as im:
                im.verify()


def run_to_the_end(path) -> None:
    """Run the config again, uninterrupted; it must finish the study and exit 0."""
    final = subprocess.run([*CLI, "run", str(path), "--no-progress"], capture_output=True,
                           text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]


def wait_for_running(cfg, timeout: float = 180.0) -> None:
    """Block until the study has a RUNNING trial (start-up takes seconds, more under load)."""
    running, deadline = _running(cfg), time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if running():
                return
        except Exception:  # the study does not exist yet
            pass
        time.sleep(0.3)
    raise TimeoutError("no trial started")


def _running(cfg) -> Callable[[], bool]:
    """A check that the config's study has a RUNNING trial.

    A server's study is opened once and polled (every open makes a pool of server connections).
    A SQLite study is read through sqlite3, read-only: opening it through Optuna would create
    the file and its tables from the test's side, where the run under test is to create them
    (the two would no longer fail on that race, ``store.make_storage`` tries again, but the
    poll is an observer and writes nothing)."""
    s = cfg["study"]
    if s["storage"]:
        study = functools.cache(lambda: load(cfg))  # a failed open is tried again next poll
        return lambda: bool(study().get_trials(states=(optuna.trial.TrialState.RUNNING,)))
    path = os.path.join(s["results"], f"{s['name']}.db")

    def in_file() -> bool:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'")
            return rows.fetchone()[0] > 0

    return in_file


def test_kill_9_at_random_moments_loses_nothing(tmp_path, tiny_path):
    path, cfg = write_config(tmp_path, tiny_path, "killed", n_trials=6)
    rng = np.random.default_rng(2024)
    for _ in range(3):
        proc = subprocess.Popen([*CLI, "run", str(path), "--no-progress"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_running(cfg)
        time.sleep(rng.uniform(0.0, 2.0))  # a random point inside or just after that trial
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run_to_the_end(path)
    study = load(cfg)
    check_consistent(study, 6)
    assert any(t.state == optuna.trial.TrialState.FAIL for t in study.get_trials()), \
        "no kill landed inside a trial; the test proved nothing"


def test_kill_9_mid_population_loses_nothing_and_counts_nothing_twice(tmp_path, tiny_path):
    path, cfg = write_config(tmp_path, tiny_path, "population", n_trials=9, population=3,
                             halving={"rungs": [0.5], "keep": 0.5})
    cfg["render"]["steps"] = 600  # a population long enough to be caught running, and killed
    path.write_text(json.dumps(cfg))
    proc = subprocess.Popen([*CLI, "run", str(path), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_running(cfg)
    time.sleep(0.5)
    running = len(load(cfg).get_trials(states=(optuna.trial.TrialState.RUNNING,)))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert running == 3  # the kill landed inside a population of three
    run_to_the_end(path)
    study = load(cfg)
    trials = study.get_trials()
    done = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                             optuna.trial.TrialState.PRUNED)]
    assert len(done) == 9 == runner.counted(study)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    killed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(killed) == 3 and all("error" not in t.user_attrs for t in killed)
    origins = [t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial")) for t in done]
    retried = [o for o in origins if o is not None]
    assert sorted(retried) == sorted(t.number for t in killed)  # each once, none twice
    for t in killed:
        again = next(d for d, o in zip(done, origins, strict=True) if o == t.number)
        assert again.params == t.params


def test_ctrl_c_mid_trial_reruns_its_settings(tmp_path, tiny_path):
    path, cfg = write_config(tmp_path, tiny_path, "interrupted", n_trials=4)
    cfg["render"]["steps"] = 1500  # a trial long enough to be caught running, and interrupted
    path.write_text(json.dumps(cfg))
    # A shell starts background jobs with SIGINT ignored, and Python then keeps it ignored: a
    # suite launched that way (``bash .ci/run &``) would see the run shrug the signal off and
    # exit 0. A terminal's Ctrl-C meets the default handler, so the run gets that.
    proc = subprocess.Popen([*CLI, "run", str(path), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_running(cfg)
    time.sleep(1.0)  # under way
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=120)
    said = proc.stderr.read()
    assert code == 130, said[-3000:]
    assert "interrupted: 1 running trials recorded FAIL (error: interrupted); run the same " \
           "command" in said, said
    failed = [t for t in load(cfg).get_trials() if t.state == optuna.trial.TrialState.FAIL]
    assert [t.user_attrs["error"] for t in failed] == ["interrupted"]
    again = subprocess.run([*CLI, "run", str(path), "--no-progress"], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "killed or interrupted trials render again" in again.stdout
    study = load(cfg)
    check_consistent(study, 4)


def test_workers_share_a_study_without_losing_or_duplicating(tmp_path, tiny_path):
    path, cfg = write_config(tmp_path, tiny_path, "workers", n_trials=12, storage=PG)
    done = subprocess.run([*CLI, "run", str(path), "--workers", "3", "--no-progress"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    study = load(cfg)
    check_consistent(study, 12)
    params = [json.dumps(t.params, sort_keys=True) for t in study.get_trials()]
    assert len(set(params)) == len(params) == 12


def test_a_worker_killed_mid_trial_has_its_trial_run_again(tmp_path, tiny_path):
    path, cfg = write_config(tmp_path, tiny_path, "one-killed", n_trials=6, storage=PG)
    url = store.storage_url(cfg["study"]["name"], PG, cfg["study"]["results"])
    def worker(i):
        return subprocess.Popen([*CLI, "run", str(path), "--no-progress", "--worker-index",
                                 str(i), "--storage", url, "--budget", "3"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = worker(0)
    wait_for_running(cfg)  # the running trial is worker 0's: it is the only worker so far
    first.send_signal(signal.SIGKILL)
    first.wait()
    worker(1).wait(timeout=600)  # a second worker carries on with the study
    run_to_the_end(path)
    study = load(cfg)
    check_consistent(study, 6)
    assert [t for t in study.get_trials() if t.state == optuna.trial.TrialState.FAIL]


def test_a_trial_killed_before_its_first_heartbeat_does_not_hold_the_study(tmp_path, tiny_path):
    """A worker killed between asking a trial and its first heartbeat leaves a RUNNING trial
    with no heartbeat, which Optuna never calls stale (CI, 2026-12-07: the next worker waited
    on it for ever). Made here without the race: the trial is asked and nothing beats it."""
    path, cfg = write_config(tmp_path, tiny_path, "unbeaten", n_trials=1, storage=PG)
    first = subprocess.run([*CLI, "run", str(path), "--no-progress"], capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    orphan = runner._ask(load(cfg))  # RUNNING, never beaten: its worker "died" at once
    cfg["study"]["n_trials"] = 3
    path.write_text(json.dumps(cfg))
    again = subprocess.run([*CLI, "run", str(path), "--no-progress"], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    study = load(cfg)
    assert study.trials[orphan.number].state == optuna.trial.TrialState.FAIL
    check_consistent(study, 3)


def test_two_processes_count_n_trials_exactly_and_a_killed_one_is_rerun(tmp_path, tiny_path):
    """Process A with two workers and a separate process B on one study; B is killed -9 while it
    holds a population. Exactly n_trials count, none is left WAITING or RUNNING, and every
    setting B was rendering runs again once."""
    path, cfg = write_config(tmp_path, tiny_path, "two", n_trials=12, storage=PG, population=3)
    a = subprocess.Popen([*CLI, "run", str(path), "--workers", "2", "--no-progress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_running(cfg)
    b = subprocess.Popen([*CLI, "run", str(path), "--no-progress"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watched = load(cfg)  # polled below: opening it each time ran a loaded server out of
    before = {t.number for t in watched.get_trials()}  # connections (CI, 2026-12-07)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # until B holds trials of its own
        if len({t.number for t in watched.get_trials(
                states=(optuna.trial.TrialState.RUNNING,))} - before) >= 3 and b.poll() is None:
            break
        time.sleep(0.2)
    b.send_signal(signal.SIGKILL)
    b.wait()
    out, err = a.communicate(timeout=900)
    assert a.returncode == 0, err[-2000:]
    study = load(cfg)
    check_consistent(study, 12)
    trials = study.get_trials()
    assert not [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    origins = [trials_origin(t) for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(origins) == len(set(origins)) == 12  # no setting ran twice
    assert "trials already finished" not in out


def test_two_processes_started_together_stop_at_n_trials(tmp_path, tiny_path):
    """Two commands on one study at once (one with two workers), each asking populations of 4:
    8 trials in all, not 12."""
    path, cfg = write_config(tmp_path, tiny_path, "together", n_trials=8, storage=PG,
                             population=4)
    cfg["render"]["steps"] = 1500  # populations long enough that all three ask at once
    path.write_text(json.dumps(cfg))
    procs = [subprocess.Popen([*CLI, "run", str(path), "--no-progress", *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for extra in (["--workers", "2"], [])]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
    study = load(cfg)
    check_consistent(study, 8)
    surplus = [t for t in study.get_trials() if t.user_attrs.get("surplus")]
    assert all(t.state == optuna.trial.TrialState.FAIL and not t.params for t in surplus)


def trials_origin(t) -> int:
    return t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial", t.number))


@pytest.mark.skipif(not PG, reason="set VISSEARCH_TEST_PG to a PostgreSQL URL (CI does)")
def test_postgres_is_really_used():
    assert PG.startswith("postgresql")
    storage = store.make_storage(PG)
    assert isinstance(storage, optuna.storages.RDBStorage)
    assert storage.get_heartbeat_interval() == store.HEARTBEAT_S


def test_a_worker_that_dies_before_its_first_trial_leaves_nothing_undone(
        tmp_path, tiny_path, monkeypatch, capsys):
    """Its share runs in the main process: n_trials count, and the run says what happened."""
    from vissearch import runconfig

    _, cfg = write_config(tmp_path, tiny_path, "dead-worker", n_trials=6)

    class DeadOnArrival:
        def __init__(self, *args, **kwargs):
            pass

        def wait(self):
            return -9

    monkeypatch.setattr(runner.subprocess, "Popen", DeadOnArrival)
    study = runner.run_workers(runconfig.from_mapping(cfg), 3, progress=False)
    assert runner.counted(study) == 6
    assert "workers exited with [-9, -9]; this process runs what they left" in \
        capsys.readouterr().err


def test_images_of_a_trial_killed_while_uploading_are_removed(tmp_path, tiny_path):
    """A kill between a trial's uploads and its record leaves files no trial references; the
    next run deletes them (and renders that trial's settings again)."""
    from optuna.artifacts import upload_artifact

    from vissearch import runconfig

    _, raw = write_config(tmp_path, tiny_path, "orphans", n_trials=2)
    cfg = runconfig.from_mapping(raw)
    study = runner.open_or_create(cfg)
    trial = runner._ask(study)
    trial.suggest_float("lr", 0.5, 20.0, log=True)
    artifacts = store.artifact_store(study)
    png = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(png)
    aid = upload_artifact(artifact_store=artifacts, file_path=str(png), study_or_trial=trial)
    artifacts.name(aid, f"trials/{trial.number:04d}/grid.png")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # as a killed trial ends: no error
    base = study.user_attrs["artifact_dir"]
    assert os.listdir(base) == [aid]
    study = runner.run(cfg, progress=False)
    referenced = {a for t in study.get_trials() if "images" in t.user_attrs
                  for a in [t.user_attrs["images"]["grid"],
                            *t.user_attrs["images"]["targets"].values()]}
    assert aid not in os.listdir(base) and set(os.listdir(base)) == referenced
    assert not os.path.exists(os.path.join(os.path.dirname(base), f"trials/{trial.number:04d}"))
    assert runner.counted(study) == 2


def test_files_a_killed_write_left_are_removed_when_no_trial_runs(tmp_path, tiny_path, capsys):
    """A kill -9 inside a write leaves a .tmp file; one just after an upload, before Optuna notes
    it on the trial, an image no trial references. The next run removes both kinds (not while
    a trial runs: a live worker's write looks the same), and keeps every recorded image."""
    from vissearch import recovery, runconfig

    _, raw = write_config(tmp_path, tiny_path, "strays", n_trials=1)
    cfg = runconfig.from_mapping(raw)
    study = runner.run(cfg, progress=False)
    base = study.user_attrs["artifact_dir"]
    kept = sorted(os.listdir(base))
    folder = os.path.join(os.path.dirname(base), "trials", "0000")
    strays = [os.path.join(base, str(uuid.uuid4())), os.path.join(base, str(uuid.uuid4())),
              os.path.join(base, f".{uuid.uuid4()}.k2j3h4.tmp"),
              os.path.join(folder, ".grid.png.a8d7s6.tmp")]
    for path in strays:
        with open(path, "wb") as f:
            f.write(b"\x89PNG half")
    running = runner._ask(study)  # another worker's trial: its writes may be these
    assert recovery.remove_strays(study) == [] and all(map(os.path.exists, strays))
    study.tell(running, state=optuna.trial.TrialState.FAIL)
    capsys.readouterr()
    study = runner.run(cfg, progress=False)
    assert f"removed 4 files that killed writes left in {os.path.dirname(base)}\n" in \
        capsys.readouterr().out
    assert not [p for p in strays if os.path.exists(p)]
    assert sorted(os.listdir(base)) == kept and os.path.isfile(os.path.join(folder, "grid.png"))


def test_a_worker_whose_budget_is_spent_still_runs_the_waiting_retries(tmp_path, tiny_path):
    """Killed trials' retries wait in the study; a worker with a budget of 1 takes them all
    (before, it took one and left the rest WAITING for ever)."""
    from vissearch import runconfig

    _, raw = write_config(tmp_path, tiny_path, "budget", n_trials=4)
    cfg = runconfig.from_mapping(raw)
    study = runner.open_or_create(cfg)
    killed = []
    for _ in range(3):  # three trials killed, as Optuna's heartbeat leaves them
        trial = runner._ask(study)
        trial.suggest_float("lr", 0.5, 20.0, log=True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        killed.append((trial.number, trial.params["lr"]))
    for number, lr in killed:  # and their retries, waiting
        study.enqueue_trial({"lr": lr}, user_attrs={"retry_of": number})
    study = runner.run(cfg, progress=False, budget_trials=1)
    trials = study.get_trials()
    assert not [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert sorted(t.params["lr"] for t in trials if "retry_of" in t.user_attrs) == sorted(
        lr for _, lr in killed)
