"""One regression test per class of hostile or broken config found by fuzzing (issue 13): each is
refused with one line naming the key, before any study exists, and quickly."""

import copy
import json
import time

import pytest
import yaml

from vissearch import cli, commands, runconfig, runner
from vissearch.errors import UserError
from vissearch.study import store

BASE = {
    "study": {"name": "h", "n_trials": 3},
    "model": {"name": "zoo/shapes"},
    "target": {"kind": "class", "indices": [0, 1]},
    "render": {"size": 32, "steps": 10},
    "search": {"lr": {"log_uniform": [0.1, 10.0]}},
}
FILTERS = {"kind": "filter", "layer": "conv3", "indices": [0, 1]}


def changed(tmp_path, **sections) -> dict:
    raw = copy.deepcopy(BASE)
    raw["study"]["results"] = str(tmp_path / "res")
    for key, value in sections.items():
        section, _, field = key.partition("__")
        if field:
            raw[section][field] = value
        else:
            raw[section] = value
    return raw


HANG = 30.0  # a refusal slower than this has hung; a speed figure would belong in bench/


def refused(raw, expected: str, path: str = "c.yaml") -> str:
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        runconfig.from_mapping(raw, path)
    text = str(info.value)
    assert expected in text, text
    assert "\n" not in text and len(text) <= 400 and time.perf_counter() - start < HANG, text
    return text


LONG = "x" * 300
CASES = [  # (case, {section__field: value}, expected)
    ("range stop null", {"target__indices": {"stop": None}}, "indices.stop must be a whole"),
    ("range stop list", {"target__indices": {"stop": [3]}}, "indices.stop must be a whole"),
    ("empty range", {"target__indices": {}}, "indices.stop must be a whole"),
    ("range stop inf", {"target__indices": {"stop": float("inf")}}, "indices.stop must be"),
    ("range stop 1e20", {"target__indices": {"stop": 1e20}}, "indices.stop must be a whole"),
    ("range of 1e9", {"target__indices": {"stop": 10**9}}, "must hold 1 to 65,536 indices"),
    ("range of 1e6", {"target__indices": {"start": 0, "stop": 10**6}}, "must hold 1 to 65,536"),
    ("include 5", {"search": {"include": 5}}, "search.include: expected the path"),
    ("long space path", {"search": LONG + ".yaml"}, "path too long"),
    ("long include path", {"search": {"include": LONG}}, "path too long"),
    ("long model path", {"model": {"path": LONG + ".keras"}}, "model.path: path too long"),
    ("long weights path", {"model": {"name": "VGG16", "weights": LONG}}, "model.weights: path"),
    ("storage abc", {"study__storage": "abc"}, "use sqlite:///PATH.db"),
    ("storage NUL", {"study__storage": "sqlite:///a\0b.db"}, "study.storage"),
    ("storage redis", {"study__storage": "redis://localhost"}, "use sqlite:///PATH.db"),
    ("no objective", {"study__objective": []}, "one score or a list of two"),
    ("seed 2**64", {"study__seed": 2**64, "study__sampler": "qmc"}, "study.seed"),
    ("long name", {"study__name": "n" * 256}, "1 to 100 of them"),
    ("results NUL", {"study__results": "res\0ults"}, "study.results: a path may not hold"),
    ("grid of 1e9", {"study__sampler": "grid", "search": {"median_every": {"int": [1, 10**9]}}},
     "would enumerate 1,000,000,000 combinations"),
    ("grid of 1e10", {"study__sampler": "grid",
                      "search": {"blur_every": {"int": [1, 10**5]},
                                 "median_every": {"int": [1, 10**5]}}}, "combinations"),
    ("uniform to inf", {"search": {"tv": {"uniform": [0, float("inf")]}}}, "finite numbers"),
    ("int to 1e400", {"search": {"jitter": {"int": [0, float("inf")]}}}, "whole numbers"),
    ("transfer on filters", {"target": FILTERS, "study__objective": "transfer"},
     "needs a class target"),
    ("upscaling from 1 px", {"render__upscale_stages": 20, "render__steps": 40},
     "starts at 0 px"),
    ("init image missing", {"render__init": "image", "render__init_image": "nowhere.png"},
     "no such file"),
    ("init image none", {"render__init": "image"}, "init: image needs init_image"),
    ("or_zero on a choice", {"search": {"keep": {"choice": ["last"], "or_zero": True}}},
     "or_zero: a choice lists 0"),
    ("or_zero on lr", {"search": {"lr": {"uniform": [0.1, 1.0], "or_zero": True}}},
     "lr: Input should be greater than 0"),
    ("uniform on an int", {"search": {"median_size": {"uniform": [0, 5]}}},
     "median_size takes choice, not uniform"),
    ("log on an int", {"search": {"jitter": {"log_uniform": [1, 8]}}}, "takes int or choice"),
    ("fourier with blur", {"search": {"param": {"choice": ["pixel", "fourier"]},
                                      "blur_sigma": {"uniform": [0.3, 1.0]}}},
     "search can draw"),
    ("newline key", {"study": {"name": "h", "a\nb": 1}}, "'a\\nb'"),
    ("3000-item list", {"search": {"init": {"choice": list(range(3000))}}}, "1 to 1000 values"),
    ("or_zero string", {"search": {"tv": {"uniform": [0.1, 1.0], "or_zero": "false"}}},
     "or_zero: true or false"),
    ("class count", {"target__indices": [0, 99]}, "zoo/shapes has 11 classes"),
]


@pytest.mark.parametrize("case, change, expected", CASES, ids=[c[0] for c in CASES])
def test_refused_in_one_line(tmp_path, case, change, expected):
    raw = changed(tmp_path, **change)
    if case == "class count":  # checked against the model, before the study exists
        with pytest.raises(UserError, match="11 classes"):
            runner.prepare(runconfig.from_mapping(raw))
        return
    refused(raw, expected)


@pytest.mark.parametrize("content, expected", [
    (json.dumps(BASE).encode("utf-8") + b"\n# caf\xe9\n", "not UTF-8: byte 0xe9 at line 2"),
    (json.dumps(BASE).encode("utf-16"), "UTF-16 or UTF-32; save it as UTF-8"),
])
def test_files_that_are_not_utf8(tmp_path, content, expected):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(UserError, match=expected):
        runconfig.load(str(path))


def test_an_alias_bomb_in_a_condition_is_refused_at_once(tmp_path):
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    space = yaml.safe_dump({"median_every": {"int": [4, 8]}})
    text = "\n".join(lines) + "\n" + space.rstrip() + "\n"
    text = text.replace("median_every:\n", "median_every:\n  when: {median_size: *l8}\n")
    (tmp_path / "bomb.yaml").write_text(text)
    raw = changed(tmp_path, search=str(tmp_path / "bomb.yaml"))
    start = time.perf_counter()
    refused(raw, "expands to more than 100,000 values")  # 9**9 values if it expanded them all
    assert time.perf_counter() - start < HANG


def test_storage_in_a_missing_folder_is_created_and_a_non_database_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/new/folder/s.db"
    assert store.make_storage(url) is not None and (tmp_path / "new/folder").is_dir()
    (tmp_path / "text.db").write_text("not a database")
    with pytest.raises(UserError, match="cannot be opened"):
        store.make_storage(f"sqlite:///{tmp_path}/text.db")


@pytest.mark.parametrize("results", ["a-file", "/proc/no-such-place"])
def test_results_that_cannot_hold_a_study(tmp_path, results):
    (tmp_path / "a-file").write_text("a file, not a folder")
    target = str(tmp_path / results) if results == "a-file" else results
    raw = changed(tmp_path, study__results=target)
    with pytest.raises(UserError, match="study.results: cannot create"):
        runner.prepare(runconfig.from_mapping(raw))


def test_an_unexpected_error_is_one_line_with_the_traceback_kept(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("something inside broke")

    fake = commands.Command("leaderboard", "x", "x", lambda p: None, broken)
    monkeypatch.setitem(commands.COMMANDS, "leaderboard", fake)
    assert cli.main(["leaderboard"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("internal error: RuntimeError: something inside broke")
    assert "\n" not in err and "--debug" in err
    assert "something inside broke" in cli.TRACEBACK_FILE.read_text()
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "leaderboard"])


def test_the_traceback_file_follows_no_link_planted_for_it(monkeypatch, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "private"
    monkeypatch.setattr(cli, "TRACEBACK_DIR", folder)
    monkeypatch.setattr(cli, "TRACEBACK_FILE", folder / "last-error.txt")
    folder.mkdir(mode=0o700)
    (folder / "last-error.txt").symlink_to(victim)  # planted where our file goes
    assert cli.internal_error(RuntimeError("boom")) == 1
    assert victim.read_text() == "keep me"
    assert "traceback in" not in capsys.readouterr().err  # kept nowhere rather than there
    (folder / "last-error.txt").unlink()
    folder.rmdir()
    folder.symlink_to(tmp_path)  # the folder itself a link
    assert cli.internal_error(RuntimeError("boom")) == 1
    assert not (tmp_path / "last-error.txt").exists()


SECRET_URL = "postgresql://user:s3cret-pw-77@127.0.0.1:5/db"


def test_a_storage_password_is_never_printed_passed_on_a_command_line_or_stored(
        tiny_path, tmp_path, monkeypatch, capsys):
    from vissearch import commands, runconfig, runner

    raw = {"study": {"name": "pw", "storage": SECRET_URL, "results": str(tmp_path)},
           "model": {"path": tiny_path, "preprocess": "none"},
           "target": {"kind": "class", "indices": [0]}, "render": {"size": 16, "steps": 4}}
    cfg = runconfig.from_mapping(raw)
    assert "s3cret" not in json.dumps(cfg.stored())  # what the study, dashboard, report show
    assert cfg.stored()["study"]["storage"] == "postgresql://user:***@127.0.0.1:5/db"
    assert "s3cret" not in "\n".join(commands.next_lines("c.yaml", SECRET_URL))
    monkeypatch.setenv(commands.STORAGE_ENV, SECRET_URL)  # pasted, --storage would override it
    assert "--storage" not in "\n".join(commands.next_lines("c.yaml", SECRET_URL))
    other = "postgresql://user@127.0.0.1:5/other"  # given on the command line: named again
    assert f"--storage {other} " in "\n".join(commands.next_lines("c.yaml", other))
    monkeypatch.delenv(commands.STORAGE_ENV)
    launched = []

    class Fake:
        def __init__(self, argv, **kw):
            launched.append((argv, kw.get("env", {})))

        def wait(self):
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", Fake)
    monkeypatch.setattr(runner, "prepare", lambda cfg: None)
    monkeypatch.setattr(runner, "open_or_create", lambda cfg: None)
    monkeypatch.setattr(runner, "counted", lambda study: 0)
    monkeypatch.setattr(runner, "run", lambda *a, **k: None)
    runner.run_workers(cfg, 3, progress=False)
    assert len(launched) == 2
    for argv, env in launched:
        assert not [a for a in argv if "s3cret" in a]  # ps shows every user the command line
        assert env["VISSEARCH_STORAGE"] == SECRET_URL


def test_the_working_folder_as_results_holds_the_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = changed(tmp_path, study__results=".", study__n_trials=1)
    study = runner.run(runconfig.from_mapping(raw, str(tmp_path / "c.yaml")), progress=False)
    assert len(study.get_trials()) == 1 and (tmp_path / "h.db").is_file()
