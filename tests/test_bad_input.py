"""Every mistake in a run config is one line, naming the key path, the bad value and what is
valid, found before any model loads. One test per case."""

import copy
import subprocess
import sys

import pytest
import yaml

from vissearch import runconfig
from vissearch.errors import UserError

GOOD = {
    "study": {"name": "ok", "n_trials": 3},
    "model": {"name": "zoo/shapes"},
    "target": {"kind": "class", "indices": [0, 1]},
    "render": {"size": 32, "steps": 10},
    "search": {"lr": {"log_uniform": [0.1, 10.0]}},
}


def with_change(path: str, value):
    cfg = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return cfg


CASES = [
    ("unknown key", "study.n_trails", 5, "study.n_trails: unknown key (did you mean: n_trials"),
    ("wrong type", "study.n_trials", "ten", "study.n_trials: Input should be a valid integer"),
    ("inverted range", "search.lr", {"uniform": [5.0, 1.0]}, "empty or inverted range [5.0, 1.0]"),
    ("empty range", "search.lr", {"uniform": [1.0, 1.0]}, "empty or inverted range [1.0, 1.0]"),
    ("log range touches 0", "search.lr", {"log_uniform": [0.0, 1.0]}, "touches 0"),
    ("unknown sampler", "study.sampler", "bayes", "'random', 'tpe', 'qmc' or 'grid'"),
    ("unknown optimizer", "render.optimizer", "adamw",
     "'sgd', 'nesterov', 'rmsprop', 'adam' or 'nadam'"),
    ("unknown init", "render.init", "noise", "'uniform', 'gaussian', 'gray' or 'image'"),
    ("unknown schedule", "render.schedule", "exp", "'constant', 'step', 'cosine' or 'linear'"),
    ("even median", "render.median_size", 4, "median_size must be 0 (off), 3 or 5, got 4"),
    ("missing model", "model", {}, "give exactly one of model.name, model.path or model.onnx"),
    ("two models", "model", {"name": "zoo/shapes", "onnx": "m.onnx"},
     "give exactly one of model.name, model.path or model.onnx"),
    ("missing onnx file", "model", {"onnx": "nowhere.onnx"}, "model.onnx 'nowhere.onnx': no such"),
    ("missing class names", "model.classes", "nowhere.txt", "model.classes 'nowhere.txt'"),
    ("missing model file", "model", {"path": "nowhere.keras"}, "'nowhere.keras': no such file"),
    ("unknown zoo model", "model", {"name": "zoo/shape"}, "did you mean: zoo/shapes"),
    ("missing indices", "target.indices", KeyError, "target.indices is required"),
    ("negative indices", "target.indices", [1, -2], "must be >= 0, got [-2]"),
    ("duplicate indices", "target.indices", [1, 1], "duplicates: [1]"),
    ("n_trials zero", "study.n_trials", 0, "study.n_trials: Input should be greater than"),
    ("missing space file", "search", "searchspace/nope.yaml", "'searchspace/nope.yaml' does not"),
    ("fixed and searched", "render.lr", 1.0, "render.lr is both fixed (render:) and searched"),
    ("unknown objective", "study.objective", "beauty", "'beauty' is not a score"),
    ("bad study name", "study.name", "../escape", "may hold only letters, digits"),
]


@pytest.mark.parametrize("case, path, value, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_config(case, path, value, expected):
    with pytest.raises(UserError) as info:
        runconfig.from_mapping(with_change(path, value), "c.yaml")
    message = str(info.value)
    assert expected in message and "\n" not in message, message


@pytest.mark.parametrize("study, render, search, expected", [
    ({"pruner": "median"}, {"candidates": 2}, None, "a trial pruned among its candidates"),
    ({"halving": {"rungs": [0.5], "keep": 0.5}}, {"candidates": 2}, None, "cannot be halved"),
    ({}, {}, {"candidates": {"int": [1, 3]}}, "search.candidates cannot be searched"),
    ({}, {"judge": "zoo/efficientnet-lite2"}, None, "picks among candidates; set candidates"),
], ids=["pruner", "halving", "searched", "judge alone"])
def test_candidates_refused_where_a_trial_could_not_be_replayed(study, render, search,
                                                                expected):
    cfg = copy.deepcopy(GOOD)
    cfg["study"].update(study)
    cfg.setdefault("render", {}).update(render)
    if search:
        cfg["search"] = search
    with pytest.raises(UserError) as info:
        runconfig.from_mapping(cfg, "c.yaml")
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("study:\n  name: x\n  n_trials: [3\nmodel: {name: zoo/shapes}\n")
    with pytest.raises(UserError, match=r"c.yaml: YAML syntax error at line \d+"):
        runconfig.load(str(bad))


def test_the_cli_exits_2_with_one_line_and_debug_shows_a_traceback(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump(with_change("render.median_size", 4)))
    cmd = [sys.executable, "-m", "vissearch", "run", str(bad)]
    plain = subprocess.run(cmd, capture_output=True, text=True)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in plain.stderr and "median_size" in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "vissearch", "--debug", *cmd[3:]],
                           capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_an_interrupt_wrapped_by_a_library_still_counts_as_ctrl_c():
    from vissearch.cli import interrupted

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("rollback failed") from None
    except RuntimeError as err:
        wrapped = err
    assert interrupted(wrapped)
    assert not interrupted(RuntimeError("a real bug"))


@pytest.mark.parametrize("render, target, what", [
    ({"size": 4096, "batch_size": 64}, {"kind": "filter", "layer": "conv2",
                                        "indices": {"stop": 64}}, "64 targets, 4096 px"),
    ({"steps": 100_000}, {"kind": "filter", "layer": "conv2", "indices": {"stop": 65_536}},
     "65536 targets"),
])
def test_a_trial_that_cannot_fit_in_memory_is_refused(tiny_path, tmp_path, render, target, what):
    from vissearch import runconfig

    raw = {"study": {"name": "big", "results": str(tmp_path)},
           "model": {"path": tiny_path, "preprocess": "none"}, "target": target,
           "render": render}
    with pytest.raises(UserError, match=f"one trial would need about .* GiB \\({what}"):
        runconfig.from_mapping(raw)


def test_workers_past_what_the_machine_holds_are_refused(tiny_path, tmp_path):
    from vissearch import runconfig, runner

    raw = {"study": {"name": "w", "results": str(tmp_path)},
           "model": {"path": tiny_path, "preprocess": "none"},
           "target": {"kind": "class", "indices": [0]}, "render": {"size": 16, "steps": 2}}
    with pytest.raises(UserError, match="--workers 100000: give 1 to"):
        runner.run_workers(runconfig.from_mapping(raw), 100_000)


def test_leaderboard_of_a_missing_study_and_a_refused_run_leave_no_files(tiny_path, tmp_path):
    import json

    cli = [sys.executable, "-m", "vissearch"]
    raw = {"study": {"name": "ghost", "results": str(tmp_path / "res")},
           "model": {"path": tiny_path, "preprocess": "none"},
           "target": {"kind": "filter", "layer": "no_such_layer", "indices": [0]},
           "render": {"size": 16, "steps": 2}}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(raw))
    board = subprocess.run([*cli, "leaderboard", str(path)], capture_output=True, text=True)
    assert board.returncode == 2 and "no study named 'ghost'" in board.stderr
    assert not (tmp_path / "res" / "ghost.db").exists()
    run = subprocess.run([*cli, "run", str(path), "--no-progress"], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "no_such_layer" in run.stderr, run.stderr
    assert not (tmp_path / "res" / "ghost").exists()  # no empty artifacts folder
    assert not (tmp_path / "res" / "ghost.db").exists()
