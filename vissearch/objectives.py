"""Objectives: ``(model, target) => (images [B,H,W,3], indices [B]) => values [B]``.

Image ``b`` of a batch ascends its own target ``indices[b]``, so one forward pass serves many
filters or classes. Layer outputs are taken after their activation, as a Keras Conv2D with relu
gives them; class scores are taken before any softmax.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from vissearch.config import TargetSpec
from vissearch.errors import UserError, closest
from vissearch.loaded import LoadedModel

Objective = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def build(loaded: LoadedModel, target: TargetSpec) -> Objective:
    """Check the target against the model and return its batched objective."""
    model = loaded.model
    if target.kind == "class":
        features = class_scores(model)
        _check_range(target.indices, features.output.shape[-1], "class", loaded.label)
    else:
        layer = _find_layer(model, target.layer)
        shape = tuple(layer.output.shape)
        if len(shape) != 4:
            raise UserError(
                f"target.layer {target.layer!r} outputs shape {shape}, which has no channels "
                f"(kind: {target.kind} needs a conv layer with [batch, height, width, channels])"
            )
        if target.kind != "layer":
            _check_range(target.indices, shape[-1], "filter", f"layer {target.layer}")
        features = keras.Model(model.inputs, layer.output)

    kind, reduce = target.kind, target.reduce

    def objective(images: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
        out = features(images, training=False)
        if kind == "class":
            return tf.gather(out, indices, axis=1, batch_dims=1)
        if kind == "layer":
            return tf.reduce_sum(out, axis=[1, 2, 3])
        maps = tf.gather(out, indices, axis=3, batch_dims=1)  # [B, H, W]
        if kind == "neuron":
            h, w = tf.shape(maps)[1] // 2, tf.shape(maps)[2] // 2
            return maps[:, h, w]
        return tf.reduce_mean(maps, [1, 2]) if reduce == "mean" else tf.reduce_sum(maps, [1, 2])

    return objective


def class_scores(model: keras.Model) -> keras.Model:
    """A model that outputs class scores before softmax.

    A separate softmax Activation layer is cut off; a Dense layer with a softmax activation is
    switched to linear in place (the model object is ours, loaded for this run).
    """
    if len(model.output.shape) != 2:
        raise UserError(
            "a class target needs a classifier, but the model outputs "
            f"{tuple(model.output.shape)}; use kind: filter, or a model with its classifier"
        )
    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation) and _is_softmax(last.activation):
        return keras.Model(model.inputs, last.input)
    if isinstance(last, keras.layers.Softmax):
        return keras.Model(model.inputs, last.input)
    if _is_softmax(getattr(last, "activation", None)):
        last.activation = keras.activations.linear
    return model


def _is_softmax(fn: object) -> bool:
    return getattr(fn, "__name__", "") == "softmax"


def _find_layer(model: keras.Model, name: str | None) -> keras.layers.Layer:
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise UserError(f"target.layer {name!r} is not in the model{closest(str(name), names)}")
    return model.get_layer(name)


def _check_range(indices: list[int], count: int, what: str, where: str) -> None:
    bad = [i for i in indices if i >= count]
    if bad:
        raise UserError(
            f"target.indices {bad}: {where} has {count} {what}s, "
            f"so valid indices are 0..{count - 1}"
        )
