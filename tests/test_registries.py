"""Every extension point is one registry, and its keys are exactly what the config accepts."""

import re
import typing
from pathlib import Path

import pytest

from vissearch import commands, runner
from vissearch.engine import optimizers, param, regularizers
from vissearch.models import zoo
from vissearch.scoring import scores
from vissearch.settings.config import RenderSettings
from vissearch.settings.studyspec import StudySpec

README = Path(__file__).resolve().parent.parent / "README.md"


def accepted(model, field: str) -> set:
    return set(typing.get_args(model.model_fields[field].annotation))


@pytest.mark.parametrize("registry, model, field", [
    (runner.SAMPLERS, StudySpec, "sampler"),
    (runner.PRUNERS, StudySpec, "pruner"),
    (optimizers.OPTIMIZERS, RenderSettings, "optimizer"),
    (optimizers.SCHEDULES, RenderSettings, "schedule"),
    (param.PARAMS, RenderSettings, "param"),
    (param.INITS, RenderSettings, "init"),
], ids=["samplers", "pruners", "optimizers", "schedules", "params", "inits"])
def test_registry_keys_equal_the_accepted_values(registry, model, field):
    assert set(registry) == accepted(model, field)


def test_median_sizes_each_have_a_pixel_operation():
    sizes = accepted(RenderSettings, "median_size") - {0}
    ops = {op.name for op in regularizers.PIXEL_OPS}
    assert {f"median {s}x{s}" for s in sizes} <= ops


def test_the_readme_score_table_is_the_registry():
    rows = re.findall(r"^\| `([a-z_0-9]+)`(?:, `([a-z_0-9]+)`)? \| (max|min) \|",
                      README.read_text(), flags=re.M)
    table = {}
    for first, second, direction in rows:
        for name in filter(None, (first, second)):
            table[name] = direction + "imize"
    assert table == {name: s.direction for name, s in scores.SCORES.items()}


def test_the_readme_lists_every_command_and_zoo_model():
    text = README.read_text()
    for name in commands.COMMANDS:
        assert f"python -m vissearch {name}" in text, name
    for name in zoo.ZOO:
        assert name in text, name
