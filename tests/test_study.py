"""The main job end to end on the tiny CNN: run, resume, leaderboard, reproduce."""

import json
import subprocess
import sys

import optuna
import pytest

from vissearch import errors, runconfig, runner
from vissearch.engine import seeds
from vissearch.errors import UserError
from vissearch.reproduce import reproduce
from vissearch.study import store
from vissearch.study.leaderboards import leaderboard, shared_settings

SPACE = {
    "lr": {"log_uniform": [0.5, 20.0]},
    "median_size": {"choice": [0, 3]},
    "median_every": {"int": [2, 4], "when": {"median_size": 3}},
    "optimizer": {"choice": ["sgd", "adam"]},
}


def config(tiny_path, results, n_trials=3, **study):
    return {
        "study": {"name": "tiny-study", "seed": 11, "n_trials": n_trials,
                  "results": str(results), **study},
        "model": {"path": tiny_path, "preprocess": "none"},
        "target": {"kind": "class", "indices": [0, 2, 4]},
        "render": {"size": 16, "steps": 8},
        "search": SPACE,
    }


@pytest.fixture()
def done_study(tiny_path, tmp_path):
    cfg = runconfig.from_mapping(config(tiny_path, tmp_path))
    return cfg, runner.run(cfg, progress=False)


def test_a_study_records_everything_a_trial_needs(done_study):
    cfg, study = done_study
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    t = trials[0]
    assert t.user_attrs["seed"] == seeds.trial_seed(11, 0)
    assert t.user_attrs["settings"]["lr"] == t.params["lr"]
    assert set(t.user_attrs["scores"]) >= {"activation", "dead", "failed"}
    assert set(t.user_attrs["activations"]) == {"0", "2", "4"}
    assert len(t.user_attrs["curve"]["values"]) == 3
    assert "tensorflow" in t.user_attrs["versions"]
    assert t.intermediate_values  # the loss curve, reported for pruners
    assert study.user_attrs["config"]["search"] == SPACE


def test_a_trial_with_candidates_records_the_seed_each_target_kept(tiny_path, tmp_path):
    raw = config(tiny_path, tmp_path, n_trials=1)
    raw["render"] = {**raw["render"], "candidates": 2}
    study = runner.run(runconfig.from_mapping(raw), progress=False)
    attrs = study.get_trials()[0].user_attrs
    seed = attrs["seed"]
    assert set(attrs["picked"]) == {"0", "2", "4"}
    for target, kept in attrs["picked"].items():
        first, second = attrs["pick_scores"][target]
        assert kept == (seed if first >= second else seed + 1)


def test_a_ctrl_c_python_dropped_still_stops_the_run_at_the_next_window(tiny_path, tmp_path):
    """Python drops a KeyboardInterrupt raised inside a weakref callback (CI met it once: the
    run went on and exited 0); the CLI's handler also sets errors.INTERRUPT, which the run
    checks at every reporting window."""
    cfg = runconfig.from_mapping(config(tiny_path, tmp_path, n_trials=2))
    errors.INTERRUPT.set()  # what the handler leaves behind when its raise is dropped
    try:
        with pytest.raises(KeyboardInterrupt, match="running trials recorded FAIL"):
            runner.run(cfg, progress=False)
    finally:
        errors.INTERRUPT.clear()
    trials = runner.run(cfg, progress=False).get_trials()  # the same command again
    stopped = [t for t in trials if t.user_attrs.get("error") == "interrupted"]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert stopped and all(t.state == optuna.trial.TrialState.FAIL for t in stopped)
    assert "steps_run" not in stopped[0].user_attrs  # stopped before its render ended
    assert len(done) == 2 and all(t.params in [d.params for d in done] for t in stopped)


def test_leaderboard_columns_and_order(done_study):
    _, study = done_study
    df = leaderboard(study)
    assert list(df.columns[:3]) == ["number", "state", "activation"]
    for col in ("score_activation", "score_dead", "lr", "median_size", "optimizer",
                "grid_png", "n_images", "duration_s", "wall_s", "seed"):
        assert col in df.columns
    assert df["activation"].is_monotonic_decreasing
    assert df["grid_png"].map(lambda p: open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n").all()
    assert (df["n_images"] == 3).all()
    assert leaderboard(study, state="FAIL").empty
    assert shared_settings(df, 2)
    conditional = df.head(3).copy()  # median_every exists only where median_size is 3
    conditional["median_every"] = [4.0, None, None]
    conditional.attrs = df.attrs
    lines = {line.split(":")[0]: line for line in shared_settings(conditional, 3)}
    assert lines["median_every"].endswith("(the others do not use median_every)") or \
        "set in 1 of 3" in lines["median_every"]


def test_resume_keeps_completed_trials_and_counts_the_total(tiny_path, tmp_path, done_study):
    cfg, study = done_study
    first = {t.number: t.params for t in study.get_trials()}
    bigger = runconfig.from_mapping(config(tiny_path, tmp_path, n_trials=5))
    again = runner.run(bigger, progress=False)
    trials = again.get_trials()
    assert len(trials) == 5
    assert {t.number: t.params for t in trials[:3]} == first
    assert all(t.params not in first.values() for t in trials[3:])  # a resume draws anew
    runner.run(bigger, progress=False)
    assert len(again.get_trials()) == 5


def test_resume_with_another_config_is_refused(tiny_path, tmp_path, done_study):
    changed = config(tiny_path, tmp_path)
    changed["render"]["steps"] = 9
    with pytest.raises(UserError, match="another config"):
        runner.run(runconfig.from_mapping(changed), progress=False)


def test_reproduce_gives_identical_png_bytes(done_study, tmp_path):
    _, study = done_study
    trial, settings, same = reproduce(study, "best", tmp_path / "again")
    assert trial.number == study.best_trial.number
    assert same and all(same.values()), same
    assert settings.seed == trial.user_attrs["seed"]


def test_the_study_reopens_from_storage_without_the_config(done_study):
    cfg, _ = done_study
    url = store.storage_url(cfg.study.name, None, cfg.study.results)
    df = leaderboard(cfg.study.name, storage=url)
    assert len(df) == 3


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tiny_path, tmp_path):
    # a start image that exists but is no image: only the trials that draw it fail, at render
    (tmp_path / "broken.png").write_text("not a PNG")
    raw = config(tiny_path, tmp_path, n_trials=8)
    raw["render"]["init_image"] = str(tmp_path / "broken.png")
    raw["search"] = {**SPACE, "init": {"choice": ["uniform", "image"]}}
    study = runner.run(runconfig.from_mapping(raw), progress=False)
    states = [t.state.name for t in study.get_trials()]
    assert len(states) == 8 and "FAIL" in states and "COMPLETE" in states
    failed = leaderboard(study, state="FAIL")
    assert failed["error"].str.contains("cannot be read").all()


def test_cli_run_leaderboard_reproduce(tiny_path, tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(json.dumps(config(tiny_path, tmp_path / "res", n_trials=2)))
    cli = [sys.executable, "-m", "vissearch"]
    run = subprocess.run([*cli, "run", str(cfg_file), "--no-progress"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lb = subprocess.run([*cli, "leaderboard", str(cfg_file), "--csv", str(tmp_path / "lb.csv")],
                        capture_output=True, text=True)
    assert lb.returncode == 0 and "activation" in lb.stdout and (tmp_path / "lb.csv").exists()
    rep = subprocess.run([*cli, "reproduce", str(cfg_file), "--trial", "1", "--out",
                          str(tmp_path / "rep")], capture_output=True, text=True)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "4 of 4 identical" in rep.stdout and "render:" in rep.stdout


def test_cli_user_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: {name: x, n_trials: 0}\nmodel: {name: VGG16}\ntarget: {kind: class}\n")
    out = subprocess.run([sys.executable, "-m", "vissearch", "run", str(bad)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "study.n_trials" in out.stderr and "Traceback" not in out.stderr


def test_a_population_with_halving_records_pruned_trials_that_reproduce(tiny_path, tmp_path,
                                                                       capsys):
    import re

    raw = config(tiny_path, tmp_path, n_trials=8, population=4,
                 halving={"rungs": [0.25, 0.5], "keep": 0.5})
    raw["render"]["steps"] = 40
    study = runner.run(runconfig.from_mapping(raw), progress=True)
    bar = capsys.readouterr().err  # the bar moved inside each population, not once per one
    assert re.search(r" [1-3]\.\d+/8 ", bar) and re.search(r" [5-7]\.\d+/8 ", bar), bar[-800:]
    assert "population of 4: step 20/40" in bar
    trials = study.get_trials()
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE"] * 2 + ["PRUNED"] * 6
    assert runner.counted(study) == 8
    for t in trials:
        assert len(t.user_attrs["population"]) == 4 and t.number in t.user_attrs["population"]
        assert t.user_attrs["images"]["grid"]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert sorted({t.user_attrs["stopped"]["step"] for t in pruned}) == [10, 20]
    assert all(t.user_attrs["rungs"] for t in pruned)
    for t in (pruned[0], pruned[-1], study.best_trial):
        _, _, same = reproduce(study, str(t.number), tmp_path / f"again{t.number}")
        assert same and all(same.values()), (t.number, same)


def test_a_trial_stored_before_folding_existed_reproduces_unfolded():
    from vissearch.reproduce import _settings
    from vissearch.settings.config import RenderSettings

    old = RenderSettings(steps=7).model_dump()
    del old["fold_batchnorm"]
    trial = optuna.trial.create_trial(value=1.0, user_attrs={"settings": old})
    assert _settings(trial).fold_batchnorm is False and _settings(trial).steps == 7
    now = RenderSettings().model_dump()
    assert _settings(optuna.trial.create_trial(value=1.0, user_attrs={"settings": now})
                     ).fold_batchnorm is True
