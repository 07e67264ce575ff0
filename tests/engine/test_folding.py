"""render.fold_batchnorm: the folded network computes the unfolded one's function and gradient,
targets read the values they named, and the step uses it only when asked."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vissearch.engine import folding, hparams
from vissearch.engine.render import render
from vissearch.imageio import Preprocess
from vissearch.models.resolve import LoadedModel
from vissearch.settings.config import RenderSettings, TargetSpec


def bn_cnn(seed: int = 0) -> keras.Model:
    """Conv, depthwise (multiplier 2) and dense layers each followed by a batch normalization
    with moving statistics far from 0 and 1; one conv feeds two layers and must stay."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    y = keras.layers.Conv2D(12, 1, name="shared")(x)
    x = keras.layers.Add(name="add")([keras.layers.BatchNormalization(name="shared_bn")(y), y])
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(5, name="dense")(x)
    out = keras.layers.BatchNormalization(name="dense_bn")(x)
    model = keras.Model(inp, out, name="bn_cnn")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, n), rng.normal(0, 1, n),
                               rng.normal(0, 2, n), rng.uniform(0.2, 3.0, n)])
    return model


def test_folds_every_pair_it_may_and_no_other():
    model = bn_cnn()
    assert folding.pairs(model) == {"conv1": "conv1_bn", "dw": "dw_bn", "dense": "dense_bn"}
    assert folding.reads_folded(model, "dw") and not folding.reads_folded(model, "dw_bn")
    assert not folding.reads_folded(model, "shared") and not folding.reads_folded(model, None)
    # a layer with an activation keeps its normalization
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    assert folding.pairs(keras.Model(inp, keras.layers.BatchNormalization()(x))) == {}


def test_the_folded_network_has_the_same_outputs_and_input_gradient():
    model = bn_cnn()
    copy = folding.folded(model)
    assert copy is not model and folding.folded(model) is copy
    assert isinstance(copy.get_layer("conv1_bn"), folding.PassOn)
    assert isinstance(copy.get_layer("shared_bn"), keras.layers.BatchNormalization)
    x = tf.random.uniform([4, 20, 20, 3], -2.0, 2.0, seed=3)

    def value_and_grad(m):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = m(x, training=False)
            total = tf.reduce_sum(y * tf.range(1.0, 6.0))
        return y.numpy(), tape.gradient(total, x).numpy()

    (y0, g0), (y1, g1) = value_and_grad(model), value_and_grad(copy)
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-4 * np.abs(y0).max())
    np.testing.assert_allclose(g1, g0, rtol=1e-3, atol=1e-4 * np.abs(g0).max())
    assert np.abs(y0).max() > 1.0  # the normalizations did move the values


def test_a_target_on_a_folded_normalization_reads_what_it_named():
    model = bn_cnn()
    copy = folding.folded(model)
    x = tf.random.uniform([2, 16, 16, 3], seed=4)
    want = keras.Model(model.inputs, model.get_layer("dw_bn").output)(x)
    got = keras.Model(copy.inputs, copy.get_layer("dw_bn").output)(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the folded conv's own output is normalized: a target on it renders unfolded (below)
    before = keras.Model(model.inputs, model.get_layer("dw").output)(x)
    assert np.abs(keras.Model(copy.inputs, copy.get_layer("dw").output)(x) - before).max() > 0.1


def test_a_target_on_a_folded_layer_renders_as_loaded():
    loaded = LoadedModel(bn_cnn(), Preprocess.named("none"), "bn_cnn")
    target = TargetSpec(kind="filter", layer="dw", indices=[1, 3])
    settings = dict(size=24, steps=4, lr=2.0, batch_size=8)
    plain = render(loaded, target, RenderSettings(**settings, fold_batchnorm=False))
    fold = render(loaded, target, RenderSettings(**settings))
    assert np.array_equal(fold.pixels(), plain.pixels())


def test_a_model_without_batch_normalization_is_used_as_it_is(tiny):
    assert folding.folded(tiny.model) is tiny.model


@pytest.mark.parametrize("kind, layer", [("class", None), ("filter", "dw_bn")])
def test_renders_folded_and_unfolded_start_alike_and_both_ascend(kind, layer):
    loaded = LoadedModel(bn_cnn(), Preprocess.named("none"), "bn_cnn")
    target = TargetSpec(kind=kind, layer=layer, indices=[0, 3])
    settings = dict(size=24, steps=3, lr=2.0, batch_size=8)
    plain = render(loaded, target, RenderSettings(**settings, fold_batchnorm=False))
    fold = render(loaded, target, RenderSettings(**settings))
    # three steps: the same images up to float rounding, scored by the same (unfolded) network
    np.testing.assert_allclose(fold.pixels(), plain.pixels(), atol=0.01 * np.ptp(plain.pixels()))
    np.testing.assert_allclose(fold.activations, plain.activations, rtol=1e-3, atol=1e-3)
    longer = render(loaded, target, RenderSettings(**{**settings, "steps": 20}))
    alive = ~longer.dead
    assert alive.any()
    assert np.all(longer.activations[alive] > np.nanmean(longer.curves[:2], axis=0)[alive])


def test_folding_is_structure():
    a = RenderSettings()
    assert a.fold_batchnorm
    unfolded = a.model_copy(update={"fold_batchnorm": False})
    assert hparams.structure(a) != hparams.structure(unfolded)
