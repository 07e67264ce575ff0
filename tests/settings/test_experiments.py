"""Every file in experiments/ that the docs tell users to run parses: render files resolve to
settings, run configs (``study:``), tune configs (``tune:``) and recipes (``recipe:``) load."""

from pathlib import Path

import pytest

from vissearch import experiment, recipes, runconfig, tune
from vissearch.settings import yamlfile
from vissearch.settings.config import RenderSettings

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "experiments").glob("*.yaml"))


def test_there_are_experiment_files():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_an_experiment_file_resolves_to_settings(path, tmp_path):
    raw = yamlfile.read(path)
    if "tune" in raw:  # read as `vissearch tune` reads it: one run config per layer
        made = tune.plan(str(path), storage=f"sqlite:///{tmp_path}/s.db")
        assert made.configs and len(made.configs) == len(made.layers)
        assert all(c.target.layer in made.names for c in made.configs if c.target.layer)
        return
    if "study" in raw:
        assert runconfig.load(str(path), storage=f"sqlite:///{tmp_path}/s.db").study.n_trials >= 1
        return
    if "recipe" in raw:
        assert recipes.load(path).entries
        return
    exp = experiment.load(path)
    runs = experiment.expand_runs(exp, str(path))
    assert runs
    for name, target, settings, _ in runs:
        assert isinstance(settings, RenderSettings) and settings.steps > 0, name
        assert target.kind in {"class", "filter", "layer", "neuron"}


def test_the_lite0_class_grid_renders_the_shipped_entry():
    """experiments/lite0_classes.yaml draws the README's opening image with the recipe's entry."""
    [(_, target, settings, came)] = experiment.expand_runs(
        experiment.load(ROOT / "experiments/lite0_classes.yaml"),
        str(ROOT / "experiments/lite0_classes.yaml"))
    assert target.indices == [130, 351, 736, 850]
    assert (settings.param, settings.size, settings.crops, settings.frame) == ("maco", 160, 8, 0.6)
    assert came
