"""Batch normalizations folded into the layer before them: ``render.fold_batchnorm``.

``model => model'``. In inference a batch normalization is a fixed scale and shift per
channel, so after a linear convolution or dense layer it can be folded into that layer's kernel
and bias: ``bn(conv(x)) = conv'(x)`` with ``kernel' = kernel * s`` and ``bias' = (bias - mean) *
s + beta``, ``s = gamma / sqrt(var + eps)``. The ascent runs the network forward and back at
every step, and each normalization costs a pass over its activations both ways: on
EfficientNet-Lite0, whose 49 normalizations all fold, a step's network runs about 1.5 times as
fast (docs/bench.md, "Batch normalization folded").

The copy is the model layer for layer, with the same names: each folded normalization becomes
a layer that passes its input on, so a target on it reads the same values, now from the folded
layer before it. A pair is left as it is when the layer before has an activation, is called more
than once or feeds anything else, or when the normalization is not over the last axis. The
folded layer's own output is normalized: a target on it (:func:`reads_folded`) needs the model
as loaded. One copy per model, kept while the model lives. The folded
network computes the same function in another order of float operations, so its images differ
from the unfolded network's in the last bits, and after many steps of an ascent visibly, as a
second seed's would. A model that Keras cannot copy layer by layer (a subclassed model) is used
as it is.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

_FOLDABLE = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
             keras.layers.DepthwiseConv2D, keras.layers.Dense)
_FOLDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PAIRS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class PassOn(keras.layers.Layer):
    """A folded batch normalization: its input, unchanged."""

    def call(self, inputs, mask=None, training=None):
        return inputs


def reads_folded(model: keras.Model, layer: str | None) -> bool:
    """Whether ``layer`` is one whose own output folding would change (its normalization's
    would be read instead)."""
    return layer is not None and layer in pairs(model)


def pairs(model: keras.Model) -> dict[str, str]:
    """``{layer: its batch normalization}`` for every pair that can be folded (none for a model
    that is not a graph of layers)."""
    if model not in _PAIRS:
        try:
            _PAIRS[model] = _pairs(model)
        except (AttributeError, ValueError):  # a subclassed model
            _PAIRS[model] = {}
    return _PAIRS[model]


def _pairs(model: keras.Model) -> dict[str, str]:
    users: dict[str, int] = {}
    producer: dict[str, keras.layers.Layer] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                source = tensor._keras_history[0]
                users[source.name] = users.get(source.name, 0) + 1
                producer[layer.name] = source
    outputs = {t._keras_history[0].name for t in model.outputs}
    out = {}
    for layer in model.layers:
        before = producer.get(layer.name)
        if not isinstance(layer, keras.layers.BatchNormalization) or before is None:
            continue
        if (isinstance(before, keras.layers.Conv2DTranspose) or not isinstance(before, _FOLDABLE)
                or before.name in outputs or users[before.name] != 1
                or len(before._inbound_nodes) != 1 or len(layer._inbound_nodes) != 1
                or before.get_config().get("activation", "linear") != "linear"
                or before.get_config().get("data_format", "channels_last") != "channels_last"
                or layer.axis not in (-1, len(layer.input.shape) - 1)):
            continue
        out[before.name] = layer.name
    return out


def folded(model: keras.Model) -> keras.Model:
    """``model`` with its batch normalizations folded (see the module docstring); ``model``
    itself where none can be."""
    if model not in _FOLDED:  # None for the model itself: a value must not hold its key
        _FOLDED[model] = _fold(model)
    copy = _FOLDED[model]
    return model if copy is None else copy


def _fold(model: keras.Model) -> keras.Model | None:
    into = pairs(model)
    if not into:
        return None
    gone = set(into.values())

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in gone:
            return PassOn(name=layer.name)
        config = layer.get_config()
        if layer.name in into:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
    except (ValueError, TypeError, NotImplementedError):
        return None
    for layer in model.layers:
        if layer.name in gone:
            continue
        weights = layer.get_weights()
        if layer.name in into:
            weights = _folded_weights(layer, model.get_layer(into[layer.name]), weights)
        copy.get_layer(layer.name).set_weights(weights)
    return copy


def _folded_weights(layer, bn, weights: list[np.ndarray]) -> list[np.ndarray]:
    """``[kernel * s, (bias - mean) * s + beta]`` of ``layer`` followed by ``bn``."""
    kernel = weights[0].astype(np.float64)
    var = np.asarray(bn.moving_variance, np.float64)
    mean = np.asarray(bn.moving_mean, np.float64)
    gamma = np.asarray(bn.gamma, np.float64) if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta, np.float64) if bn.center else np.zeros_like(mean)
    s = gamma / np.sqrt(var + bn.epsilon)
    bias = weights[1].astype(np.float64) if len(weights) > 1 else np.zeros_like(mean)
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # kernel [h, w, in, multiplier]
        kernel = kernel * s.reshape(kernel.shape[2], kernel.shape[3])
    else:  # the output channels are the kernel's last axis
        kernel = kernel * s
    dtype = weights[0].dtype
    return [kernel.astype(dtype), ((bias - mean) * s + beta).astype(dtype)]
