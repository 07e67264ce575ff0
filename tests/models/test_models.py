"""Model loading and the bad inputs of a render: each a one-line message naming value and fix."""

import keras
import pytest

from vissearch.engine import objectives
from vissearch.engine.render import render
from vissearch.errors import UserError
from vissearch.models import resolve as models
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec


def message(fn) -> str:
    with pytest.raises(UserError) as info:
        fn()
    text = str(info.value)
    assert "\n" not in text
    return text


def test_saved_model_loads_and_renders(tiny_path):
    loaded = models.load(ModelSpec(path=tiny_path, preprocess="none"))
    result = render(loaded, TargetSpec(kind="filter", layer="conv1", indices=[0, 1]),
                    RenderSettings(size=16, steps=4))
    assert result.inputs.shape == (2, 16, 16, 3)


@pytest.mark.parametrize("target, expected", [
    (TargetSpec(kind="filter", layer="conv3", indices=[0]), "conv3"),
    (TargetSpec(kind="filter", layer="conv2", indices=[3, 12]), "0..11"),
    (TargetSpec(kind="filter", layer="pool", indices=[0]), "no channels"),
    (TargetSpec(kind="class", indices=[7]), "0..4"),
])
def test_bad_targets_name_the_value_and_what_is_valid(tiny, target, expected):
    text = message(lambda: objectives.build(tiny, target))
    assert expected in text


def test_unknown_layer_suggests_the_closest(tiny):
    target = TargetSpec(kind="filter", layer="conv_2", indices=[0])
    text = message(lambda: objectives.build(tiny, target))
    assert "did you mean: conv2" in text


def test_class_target_on_a_model_without_classifier():
    vgg = models.load(ModelSpec(name="VGG16", weights="none"), with_classifier=False)
    text = message(lambda: objectives.build(vgg, TargetSpec(kind="class", indices=[1])))
    assert "needs a classifier" in text


def test_missing_and_broken_model_files(tmp_path):
    missing = ModelSpec(path=str(tmp_path / "x.keras"))
    assert "no such file" in message(lambda: models.load(missing))
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    assert "does not load" in message(lambda: models.load(ModelSpec(path=str(broken))))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layers_are_refused_unless_trusted(tmp_path, suffix):
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Lambda(lambda x: x * 2.0)(inp)
    path = tmp_path / f"lambda{suffix}"
    keras.Model(inp, out).save(path)
    text = message(lambda: models.load(ModelSpec(path=str(path))))
    assert "Lambda" in text and "trust_model_code: true" in text
    assert models.load(ModelSpec(path=str(path), trust_model_code=True)).model is not None


def test_missing_imagenet_weights_name_file_size_place_and_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    text = message(lambda: models.load(ModelSpec(name="VGG16"), with_classifier=True))
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5 (528 MB)" in text
    assert str(tmp_path / "models") in text and "hed" in text and "zoo/shapes" in text


def test_unknown_application_suggests_names():
    assert "VGG16" in message(lambda: models.load(ModelSpec(name="VGG61", weights="none")))


def test_class_size_must_fit_a_fixed_input(tiny_path):
    inp = keras.Input((32, 32, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    loaded = models.LoadedModel(model, models.Preprocess.named("none"), "fixed", 32)
    text = message(lambda: render(loaded, TargetSpec(kind="class", indices=[0]),
                                  RenderSettings(size=40, steps=1)))
    assert "32x32" in text


def test_hed_vgg16_is_a_real_pretrained_stack_whose_filters_ascend():
    loaded = models.load(ModelSpec(name="VGG16", weights="hed"), with_classifier=False)
    assert loaded.preprocess.mode == "caffe" and loaded.preprocess.bgr
    target = TargetSpec(kind="filter", layer="block3_conv1", indices=[0, 1])
    result = render(loaded, target, RenderSettings(size=32, steps=12, lr=1.0, clip=False))
    assert (result.activations > result.curves[0]).all()
    names = [row[0] for row in models.layer_table(loaded.model)]
    assert "block5_conv3" in names


@pytest.mark.parametrize("name", ["__class__", "__init__", "_keras_applications"])
def test_a_dunder_name_is_not_a_keras_application(name):
    from vissearch.errors import UserError
    from vissearch.settings.config import ModelSpec

    with pytest.raises(UserError, match="is not a keras.applications model"):
        models.load(ModelSpec(name=name))
