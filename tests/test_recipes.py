"""Recipes, warm starts, apply and tune on the tiny CNN and zoo/shapes."""

import json

import numpy as np
import optuna
import pytest
import yaml

from vissearch import recipes, runconfig, runner
from vissearch.errors import UserError
from vissearch.reproduce import reproduce
from vissearch.settings.config import ModelSpec, TargetSpec
from vissearch.study import store

SPACE = {"lr": {"log_uniform": [0.5, 20.0]}, "median_size": {"choice": [0, 3]},
         "median_every": {"int": [2, 4], "when": {"median_size": 3}}}
LAYERS = ["image", "rescale", "conv1", "conv2", "pool", "pred"]


def recipe_file(tmp_path, entries, layers=LAYERS, name="r.yaml"):
    path = tmp_path / name
    recipes.write(path, {"path": "tiny.keras"}, "test", layers, entries)
    return path


def entry(layer, lr, kind="filter"):
    return {"kind": kind, "layer": layer, "render": {"lr": lr, "steps": 8},
            "source": {"study": "s", "trial": 0}}


def config(tiny_path, results, name="tiny", target=None, **study):
    return {"study": {"name": name, "seed": 5, "n_trials": 3, "results": str(results), **study},
            "model": {"path": tiny_path, "preprocess": "none"},
            "target": target or {"kind": "class", "indices": [0, 2]},
            "render": {"size": 16, "steps": 8}, "search": SPACE}


def test_lookup_exact_nearest_above_below_and_block(tmp_path):
    recipe = recipes.load(recipe_file(tmp_path, [entry("conv2", 3.0), entry("pred", 9.0)]))
    found, note = recipes.lookup(recipe, TargetSpec(kind="filter", layer="conv2", indices=[0]))
    assert found.render["lr"] == 3.0 and note == ""
    found, note = recipes.lookup(recipe, TargetSpec(kind="filter", layer="pool", indices=[0]))
    assert found.layer == "conv2" and "nearest above" in note  # conv2 comes before pool
    found, note = recipes.lookup(recipe, TargetSpec(kind="filter", layer="conv1", indices=[0]))
    assert found.layer == "conv2" and "nearest below" in note  # nothing above conv1
    found, _ = recipes.lookup(recipe, TargetSpec(kind="layer", layer="conv2"))
    assert found.layer == "conv2"  # whole layers share the filters' settings
    with pytest.raises(UserError, match="no entry for class targets; it has filter"):
        recipes.lookup(recipe, TargetSpec(kind="class", indices=[0]))
    vgg = recipes.load(recipe_file(tmp_path, [entry("block5_conv1", 80.0)],
                                   ["block5_conv1", "block5_conv2"], "vgg.yaml"))
    found, note = recipes.lookup(vgg, TargetSpec(kind="filter", layer="block5_conv4",
                                                 indices=[0]))
    assert found.layer == "block5_conv1" and "same block" in note  # a VGG19 layer
    with pytest.raises(UserError, match="no layer 'fc1' nor one of its block; it has "
                                        "block5_conv1"):
        recipes.lookup(vgg, TargetSpec(kind="filter", layer="fc1", indices=[0]))


def test_unknown_recipe_and_model_are_one_line(tmp_path):
    with pytest.raises(UserError, match="recipe 'nope': no such file or shipped recipe"):
        recipes.find("nope", tmp_path)
    with pytest.raises(UserError, match="no shipped recipe for model 'ResNet50'; shipped: "):
        recipes.family(ModelSpec(name="ResNet50"))
    name, note = recipes.family(ModelSpec(name="VGG19"))
    assert name == "vgg16-hed" and "VGG19 is the closest family" in note
    assert recipes.family(ModelSpec(name="VGG16"))[1] == ""


def test_every_shipped_recipe_loads_and_has_its_grids():
    from pathlib import Path

    docs = Path(__file__).parents[1] / "docs" / "recipes"
    shipped = sorted(recipes.SHIPPED.glob("*.yaml"))
    assert {p.stem for p in shipped} >= set(recipes.FAMILIES.values())
    for path in shipped:
        recipe = recipes.load(path)
        assert recipe.entries
        for e in recipe.entries:
            assert (e.layer is None) == (e.kind == "class")
            assert (docs / path.stem / "grids" / f"{e.layer or 'classes'}.png").is_file()


def test_a_config_renders_with_a_recipe_and_records_it(tiny_path, tmp_path):
    path = recipe_file(tmp_path, [entry("conv1", 2.0), entry(None, 7.0, "class")])
    raw = config(tiny_path, tmp_path)
    raw["render"] = {"recipe": str(path), "size": 16}
    cfg = runconfig.from_mapping(raw)
    assert cfg.fixed == {"steps": 8, "size": 16}  # the class entry, size on top, lr searched
    assert cfg.settings_from["searched"] == ["lr"]
    raw["search"] = {"median_size": {"choice": [0, 3]}}
    cfg = runconfig.from_mapping(raw)
    assert cfg.fixed == {"lr": 7.0, "steps": 8, "size": 16}
    assert cfg.settings_from["recipe"] == str(path) and cfg.settings_from["kind"] == "class"
    assert cfg.stored()["render"] == cfg.fixed  # the study keeps settings, not a file name
    raw["target"] = {"kind": "filter", "layer": "conv2", "indices": [0]}
    cfg = runconfig.from_mapping(raw)
    assert cfg.fixed["lr"] == 2.0 and "using conv1's, the nearest above" in \
        cfg.settings_from["note"]
    raw["render"], raw["search"] = {"recipe": str(path), "lr": 1.0}, SPACE
    with pytest.raises(UserError, match="render.lr is both fixed"):
        runconfig.from_mapping(raw)  # lr is searched: the fixed one would hide the search


@pytest.fixture()
def source_study(tiny_path, tmp_path):
    cfg = runconfig.from_mapping(config(tiny_path, tmp_path, name="source", n_trials=4))
    return runner.run(cfg, progress=False)


def test_warm_start_runs_the_best_trials_first_and_they_reproduce(tiny_path, tmp_path,
                                                                  source_study, capsys):
    best = store.ranked(source_study)[:2]
    raw = config(tiny_path, tmp_path, name="warm", n_trials=4,
                 warm_start={"study": "source", "top": 2, "results": str(tmp_path)})
    raw["search"] = {**SPACE, "lr": {"log_uniform": [0.5, 1.0]}}  # a narrower range
    study = runner.run(runconfig.from_mapping(raw), progress=False)
    first = study.get_trials()[:2]
    for t, b in zip(first, best, strict=True):
        assert t.user_attrs["warm_start"] == f"study source trial {b.number}"
        assert t.params["lr"] == min(b.params["lr"], 1.0)  # clipped to the new range
        assert t.params["median_size"] == b.params["median_size"]
    assert all("warm_start" not in t.user_attrs for t in study.get_trials()[2:])
    out = capsys.readouterr().out
    assert out.count("warm start: study source trial") == 2
    if best[0].params["lr"] > 1.0:
        assert "lr" in out and "clipped to 1" in out
    trial, _, same = reproduce(study, str(first[0].number), tmp_path / "again")
    assert same and all(same.values())


def test_warm_start_from_a_missing_study_is_one_line(tiny_path, tmp_path):
    raw = config(tiny_path, tmp_path, warm_start={"study": "nope", "results": str(tmp_path)})
    with pytest.raises(UserError, match="no study named 'nope'"):
        runner.run(runconfig.from_mapping(raw), progress=False)
    raw["study"]["warm_start"] = {"study": "a", "recipe": "b"}
    with pytest.raises(UserError, match="names a study or a recipe"):
        runconfig.from_mapping(raw)


def test_a_warm_start_and_a_render_study_are_found_where_the_study_itself_lives(
        tiny_path, tmp_path, monkeypatch):
    """No storage or results under warm_start or render: the config's own study.storage (as
    given, or by --storage / $VISSEARCH_STORAGE) and study.results are where they look."""
    monkeypatch.chdir(tmp_path)  # ./results/ holds nothing
    shared = f"sqlite:///{tmp_path / 'shared' / 'studies.db'}"
    src = runner.run(runconfig.from_mapping(config(tiny_path, tmp_path / "a", name="src",
                                                   n_trials=2, storage=shared)),
                     progress=False)
    best = store.ranked(src)[0]
    raw = config(tiny_path, tmp_path / "b", name="warm", n_trials=1,
                 warm_start={"study": "src", "top": 1})
    path = tmp_path / "warm.yaml"
    path.write_text(yaml.safe_dump(raw))
    study = runner.run(runconfig.load(str(path), storage=shared), progress=False)
    assert study.trials[0].user_attrs["warm_start"] == f"study src trial {best.number}"
    raw = config(tiny_path, tmp_path / "c", name="fixed", storage=shared)
    raw["render"] = {"study": "src", "trial": "best"}
    assert runconfig.from_mapping(raw).settings_from["trial"] == best.number
    raw["render"] = {"recipe": {"study": "src", "trial": "best"}}  # the README's form, too
    assert runconfig.from_mapping(raw).settings_from["trial"] == best.number
    runner.run(runconfig.from_mapping(config(tiny_path, tmp_path / "d", name="loc",
                                             n_trials=1)), progress=False)
    local = config(tiny_path, tmp_path / "d", name="fixed")  # no storage: its results folder
    local["render"] = {"study": "loc", "trial": "best"}
    assert runconfig.from_mapping(local).settings_from["study"] == "loc"
    local["study"]["results"] = str(tmp_path / "a")
    with pytest.raises(UserError, match="no study named 'loc' in sqlite:///.*/a/loc.db"):
        runconfig.from_mapping(local)
    local["render"]["results"] = str(tmp_path / "d")  # named: looked for there
    assert runconfig.from_mapping(local).settings_from["study"] == "loc"


def test_render_recipe_names_a_recipe_or_a_stored_trial(tiny_path, tmp_path):
    raw = config(tiny_path, tmp_path)
    for bad in ({"recipe": {"trial": "best"}}, {"recipe": {"study": "s", "lr": 2.0}},
                {"recipe": {"study": "s"}, "trial": 3}):
        raw["render"] = bad
        with pytest.raises(UserError, match=r"render.recipe is a recipe's name or file, or a "
                                             r"stored trial as \{study: NAME, trial: best\}"):
            runconfig.from_mapping(raw)


def test_a_run_refused_for_its_warm_start_leaves_no_study_and_no_folder(tiny_path, tmp_path):
    optuna.create_study(study_name="empty", storage=f"sqlite:///{tmp_path / 'empty.db'}")
    only_filters = recipe_file(tmp_path, [entry("conv1", 2.0)])
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(study_name="other", storage=shared)  # the shared file exists
    cases = [({"study": "nope"}, None, "no study named 'nope'"),
             ({"study": "empty"}, None, "study 'empty' has no completed trial"),
             ({"recipe": "no-such-recipe"}, None, "no such file or shipped recipe"),
             ({"recipe": str(only_filters)}, None, "has no entry for class targets"),
             ({"study": "nope"}, shared, "no study named 'nope'")]
    for warm, storage, said in cases:
        raw = config(tiny_path, tmp_path, name="refused", warm_start=warm)
        raw["study"]["storage"] = storage
        with pytest.raises(UserError, match=said):
            runner.run(runconfig.from_mapping(raw), progress=False)
        assert not (tmp_path / "refused.db").exists(), warm
        assert not (tmp_path / "refused").exists(), warm  # no artifacts folder
        assert "refused" not in optuna.get_all_study_names(shared), warm


def test_to_params_clips_rounds_and_skips_missing_choices():
    from vissearch.study import searchspace

    space = searchspace.load({"lr": {"log_uniform": [1.0, 10.0]},
                              "median_size": {"choice": [0, 3]},
                              "median_every": {"int": [4, 12], "step": 4,
                                               "when": {"median_size": 3}},
                              "blur_sigma": {"uniform": [0.3, 1.0], "or_zero": True}})
    params, changes = recipes.to_params({"lr": 40.0, "median_size": 5, "blur_sigma": 0.0},
                                        space, {})
    assert params == {"lr": 10.0, "blur_sigma_on": False}
    assert changes == ["lr 40 clipped to 10", "median_size 5 is not a choice; sampled"]
    params, _ = recipes.to_params({"lr": 2.0, "median_size": 3, "median_every": 7,
                                   "blur_sigma": 0.5}, space, {})
    assert params == {"lr": 2.0, "median_size": 3, "median_every": 8, "blur_sigma_on": True,
                      "blur_sigma": 0.5}


def test_apply_renders_a_trial_on_other_targets(tiny_path, tmp_path, source_study):
    from vissearch.apply import apply

    cfg = runconfig.from_mapping(config(tiny_path, tmp_path, name="source", n_trials=4))
    best = store.ranked(source_study)[0]
    out = tmp_path / "applied"
    apply(cfg, "best", out)  # the trial's own targets: the same bytes as stored
    stored = store.trial_file(source_study, best.user_attrs["images"], "0").read_bytes()
    assert (out / "apply" / "target_0000.png").read_bytes() == stored
    result = apply(cfg, str(best.number), tmp_path / "other", indices="1,3,4", size=24)
    assert result.indices == [1, 3, 4]
    summary = json.loads((tmp_path / "other" / "apply" / "summary.json").read_text())
    assert summary["settings_from"]["study"] == "source"
    assert summary["settings_from"]["trial"] == best.number
    assert summary["settings"]["size"] == 24 and summary["settings"]["lr"] == best.params["lr"]
    assert sorted(p.name for p in (tmp_path / "other" / "apply").glob("*.png")) == [
        "target_0001.png", "target_0003.png", "target_0004.png"]
    assert (tmp_path / "other" / "apply.png").is_file()


def test_an_experiment_takes_a_trial_or_a_recipe_per_run(tiny_path, tmp_path, source_study):
    from vissearch import experiment

    best = store.ranked(source_study)[0]
    exp = {"model": {"path": tiny_path, "preprocess": "none"},
           "target": {"kind": "class", "indices": [1]},
           "render": {"study": "source", "trial": "best", "results": str(tmp_path), "steps": 4}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    [(name, _, settings, came)] = experiment.expand_runs(experiment.load(path), str(path))
    assert settings.lr == best.params["lr"] and settings.steps == 4
    assert came["trial"] == best.number
    recipe = recipe_file(tmp_path, [entry("conv1", 2.0), entry("conv2", 5.0)])
    exp = {**exp, "target": {"kind": "filter", "layer": "conv1", "indices": [0]},
           "render": {"recipe": recipe.name},  # beside the experiment file
           "runs": [{"name": "a", "target": {"layer": "conv1"}},
                    {"name": "b", "target": {"layer": "pool"}}]}
    path.write_text(yaml.safe_dump(exp))
    runs = experiment.expand_runs(experiment.load(path), str(path))
    assert [r[2].lr for r in runs] == [2.0, 5.0]
    assert "using conv2's, the nearest above" in runs[1][3]["note"]


def test_tune_walks_up_the_layers_warm_started_and_writes_a_recipe(tmp_path):
    from vissearch.tune import tune

    raw = {"study": {"name": "t", "seed": 3, "n_trials": 4, "results": str(tmp_path / "res"),
                     "objective": ["readable_robustness", "activation"], "population": 4},
           "model": {"name": "zoo/shapes"},
           "target": {"kind": "filter", "indices": {"stop": 2}},
           "render": {"size": 32, "steps": 8},
           "search": {"lr": {"log_uniform": [1.0, 100.0]}},
           "tune": {"layers": ["conv1", "conv2"], "warm_top": 1}}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    recipe = recipes.load(tune(str(path), str(out), progress=False))
    assert [e.layer for e in recipe.entries] == ["conv1", "conv2"]
    first = store.open_study("t-conv1", None, str(tmp_path / "res"))
    second = store.open_study("t-conv2", None, str(tmp_path / "res"))
    best = store.ranked(first)[0]
    warm = second.get_trials()[0]
    assert warm.user_attrs["warm_start"] == f"study t-conv1 trial {best.number}"
    assert warm.params == best.params
    assert recipe.entries[0].render["lr"] == best.params["lr"]
    assert recipe.entries[0].source["study"] == "t-conv1"
    assert recipe.layers[:2] == ["rescale", "conv1"]  # the input layer's name is Keras's count
    assert (out / "grids" / "conv1.png").read_bytes() == store.trial_file(
        first, best.user_attrs["images"], "grid").read_bytes()
    table = (out / "table.csv").read_text().splitlines()
    assert table[0].startswith("layer,lr,") and len(table) == 3
    assert np.isfinite(recipe.entries[1].source["scores"]["readable_robustness"])
    assert all(t.state != optuna.trial.TrialState.FAIL for t in second.get_trials())


def test_cli_apply_and_its_one_line_errors(tiny_path, tmp_path, source_study):
    import subprocess
    import sys

    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config(tiny_path, tmp_path, name="source", n_trials=4)))
    cli = [sys.executable, "-m", "vissearch", "apply", str(path)]
    ok = subprocess.run([*cli, "--indices", "1:3", "--out", str(tmp_path / "o")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "wrote 2 images" in ok.stdout
    assert (tmp_path / "o" / "apply" / "target_0002.png").is_file()
    bad = subprocess.run([*cli, "--indices", "a:b", "--out", str(tmp_path / "p")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "--indices 'a:b': a range is START:STOP" in bad.stderr


def test_tune_config_mistakes_are_one_line(tmp_path):
    from vissearch.tune import tune

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"study": {"name": "t"}, "model": {"name": "zoo/shapes"}}))
    with pytest.raises(UserError, match="a tune config needs a target: section"):
        tune(str(path), str(tmp_path / "o"), progress=False)
    path.write_text(yaml.safe_dump({"study": {"name": "t", "results": str(tmp_path)},
                                    "model": {"name": "zoo/shapes"},
                                    "target": {"kind": "filter", "indices": [0]},
                                    "tune": {"layers": ["conv9"]}}))
    with pytest.raises(UserError, match="has no layer 'conv9'; python -m vissearch layers"):
        tune(str(path), str(tmp_path / "o"), progress=False)
    assert not (tmp_path / "t-conv9.db").exists()


def test_the_readme_recipe_example_takes_the_shipped_entry(tmp_path):
    """The README's render: {recipe: vgg16-hed} example, as an experiment file: the layer's
    entry from the shipped recipe, the size written beside it on top."""
    import re
    from pathlib import Path

    from vissearch import experiment

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Recipes: good settings without a search"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "exp.yaml"
    path.write_text(block)
    [(_, target, settings, came)] = experiment.expand_runs(experiment.load(path), str(path))
    entry = recipes.lookup(recipes.load(recipes.SHIPPED / "vgg16-hed.yaml"), target)[0]
    assert came["layer"] == target.layer == "block4_conv2" and came["note"] == ""
    assert settings.lr == entry.render["lr"] and settings.size == 128


def test_a_study_name_with_a_path_is_refused_and_odd_recipes_do_not_crash(tiny_path, tmp_path):
    raw = config(tiny_path, tmp_path, warm_start={"study": "../../etc/x"})
    with pytest.raises(UserError, match="may hold only letters"):
        runconfig.from_mapping(raw)
    with pytest.raises(UserError, match="render.study .* may hold only letters"):
        recipes.trial_settings({"study": "../x"}, "exp.yaml")
    # entries whose layers the recipe's list lacks, two of them at one layer: no crash
    recipe = recipes.load(recipe_file(tmp_path, [entry("conv2_a", 1.0), entry("conv2_b", 2.0)],
                                      layers=["conv1", "conv2"]))
    found, note = recipes.lookup(recipe, TargetSpec(kind="filter", layer="conv2", indices=[0]))
    assert found.layer == "conv2_b" and "same block" in note


def test_apply_mistakes_are_one_line_before_any_render(tiny_path, tmp_path, source_study,
                                                       capsys):
    from vissearch.apply import apply

    cfg = runconfig.from_mapping(config(tiny_path, tmp_path, name="source", n_trials=4))
    a_file = tmp_path / "a-file"
    a_file.write_text("kept")
    for kwargs, said in [
            ({"out": a_file}, r"--out '.*a-file': that is a file; give a folder"),
            ({"out": a_file / "sub"}, r"--out '.*a-file/sub': '.*a-file' is a file"),
            ({"out": "/proc/no-such/o"}, r"--out '/proc/no-such/o': cannot write in '/proc'"),
            ({"out": tmp_path / "o", "layer": "no_such_layer"},
             r"--layer 'no_such_layer': the config's target is kind: class"),
            ({"out": tmp_path / "o", "size": 0}, r"apply --size: size: .*8")]:
        with pytest.raises(UserError, match=said):
            apply(cfg, "best", **kwargs)
    assert a_file.read_text() == "kept" and not (tmp_path / "o").exists()
    assert "apply: settings of trial" not in capsys.readouterr().out  # nothing rendered


def test_the_readme_apply_example_writes_where_the_readme_says(tiny_path, tmp_path,
                                                               source_study):
    """The README's apply command's --out, and the grid and folder its next sentence names."""
    import re
    from pathlib import Path

    from vissearch.apply import apply

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    out = re.search(r"python -m vissearch apply \S+ .*--out (\S+)\n", readme).group(1)
    grid, folder = re.search(r"`(\S+)` is the labelled grid,\s+`(\S+)` has one PNG per target",
                             readme).groups()
    cfg = runconfig.from_mapping(config(tiny_path, tmp_path, name="source", n_trials=4))
    apply(cfg, "best", tmp_path / "cwd" / out)
    assert (tmp_path / "cwd" / grid).is_file()
    assert sorted(p.name for p in (tmp_path / "cwd" / folder).iterdir()) == [
        "curves.csv", "summary.json", "target_0000.png", "target_0002.png"]


def test_tune_refuses_no_layers_and_a_bad_recipe_path_before_any_study(tmp_path):
    from vissearch.tune import tune

    raw = {"study": {"name": "t", "n_trials": 2, "results": str(tmp_path / "res")},
           "model": {"name": "zoo/shapes"}, "target": {"kind": "filter", "indices": [0]},
           "render": {"size": 16, "steps": 2}, "tune": {"layers": ["conv1"]}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({**raw, "tune": {"layers": []}}))
    with pytest.raises(UserError, match=r"tune.layers is empty; list the layers to tune"):
        tune(str(path), str(tmp_path / "o"), progress=False)
    path.write_text(yaml.safe_dump(raw))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a recipe: [")
    for into, said in [(tmp_path, r"--recipe '.*': that is a folder; give a file's path"),
                       (a_file / "r.yaml", r"--recipe '.*a-file/r.yaml': '.*a-file' is a file"),
                       ("/proc/r.yaml", r"--recipe '/proc/r.yaml': cannot write in '/proc'"),
                       (a_file, r"a-file: YAML syntax error")]:
        with pytest.raises(UserError, match=said):
            tune(str(path), str(tmp_path / "o"), progress=False, into=str(into))
    with pytest.raises(UserError, match=r"--out '.*a-file': that is a file; give a folder"):
        tune(str(path), str(a_file), progress=False)
    assert not (tmp_path / "res").exists()  # no study ran
