"""Config validation: one line naming the key path, the bad value and what is valid."""

import pytest

from vissearch.errors import UserError
from vissearch.settings.config import Experiment, RenderSettings, TargetSpec, parse
from vissearch.settings.yamlfile import read as read_yaml


def error(model, data) -> str:
    with pytest.raises(UserError) as info:
        parse(model, data)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("data, expected", [
    ({"blur_sigmaa": 1}, "blur_sigmaa: unknown key (did you mean: blur_sigma"),
    ({"steps": "many"}, "steps: Input should be a valid integer"),
    ({"median_size": 4}, "median_size"),
    ({"optimizer": "adamw"}, "'sgd', 'nesterov', 'rmsprop', 'adam' or 'nadam'"),
    ({"lr": -1}, "lr: Input should be greater than 0"),
    ({"param": "fourier", "blur_sigma": 1.0}, "blur_sigma act on the pixel image"),
    ({"init": "image"}, "init_image"),
])
def test_render_settings_errors(data, expected):
    assert expected in error(RenderSettings, data)


@pytest.mark.parametrize("data, expected", [
    ({"kind": "filter", "indices": [1]}, "target.layer is required"),
    ({"kind": "class", "indices": [-1, 2]}, "must be >= 0"),
    ({"kind": "class", "indices": [2, 2]}, "duplicates: [2]"),
    ({"kind": "class", "indices": []}, "empty"),
])
def test_target_errors(data, expected):
    assert expected in error(TargetSpec, data)


def test_index_ranges_expand():
    spec = TargetSpec(kind="filter", layer="x", indices={"start": 2, "stop": 5})
    assert spec.indices == [2, 3, 4]


def test_nested_unknown_key_names_its_section():
    text = error(Experiment, {"model": {"name": "VGG16", "wieghts": "hed"},
                              "target": {"kind": "class"}})
    assert text.startswith("model.wieghts: unknown key (did you mean: weights")


def test_yaml_syntax_error_gives_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: VGG16\n  weights: [hed\ntarget: {}\n")
    with pytest.raises(UserError, match=r"YAML syntax error at line \d"):
        read_yaml(bad)
