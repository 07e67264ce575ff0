"""Objectives: ``(Batch) => values [B]``, one value per image, composed with arithmetic.

As in lucid's ``optvis/objectives.py``: an :class:`Objective` carries a per-image function and a
description, and ``+``, ``-`` and ``*`` (by a number, or by another objective such as a
per-image setting) build new ones. The render step maximizes one composed objective::

    target(loaded, spec) - weighted("tv", total_variation())

Image ``b`` of a batch ascends its own target ``batch.indices[b]``, so one forward pass serves
many filters, classes or trials. Layer outputs are taken after their activation, as a Keras
Conv2D with relu gives them; class scores are taken before any softmax. A penalty is a term of
the objective, never a special case inside the step.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from vissearch.errors import UserError, closest, shorten
from vissearch.imageio import Preprocess
from vissearch.models.loaded import LoadedModel
from vissearch.settings.config import TargetSpec


class Batch:
    """What an objective sees in one step.

    Attributes:
        images: model-input images ``[B, H, W, 3]`` as rendered.
        seen: the same after this step's random transforms (what the network is shown).
        indices: ``[B]`` the target index of each image.
        settings: per-image setting tensors by name (``tv``, ...).
        preprocess: the model's input convention.
        crops: views of each image in ``seen`` (``[B * crops, ...]``, image by image); a
            target's value is the mean over an image's views.
    """

    def __init__(self, images, seen, indices, settings: dict[str, Any], preprocess: Preprocess,
                 crops: int = 1):
        self.images, self.seen, self.indices = images, seen, indices
        self.settings, self.preprocess, self.crops = settings, preprocess, crops
        self._features: dict[int, tf.Tensor] = {}

    @property
    def seen_indices(self) -> tf.Tensor:
        """The target index of each view in ``seen``."""
        return self.indices if self.crops == 1 else tf.repeat(self.indices, self.crops)

    def per_image(self, values: tf.Tensor) -> tf.Tensor:
        """``[B * crops]`` values of the views => ``[B]``, the mean over each image's views."""
        if self.crops == 1:
            return values
        return tf.reduce_mean(tf.reshape(values, [-1, self.crops]), axis=1)

    def features(self, model: keras.Model) -> tf.Tensor:
        """``model(seen)``, computed once per batch however many terms ask for it."""
        key = id(model)
        if key not in self._features:
            self._features[key] = model(self.seen, training=False)
        return self._features[key]


class Objective:
    """A per-image objective with a readable description; composes with ``+``, ``-``, ``*``."""

    def __init__(self, fn: Callable[[Batch], tf.Tensor], description: str):
        self.fn, self.description = fn, description

    def __call__(self, batch: Batch) -> tf.Tensor:
        return self.fn(batch)

    def __repr__(self) -> str:
        return f"Objective({self.description})"

    def __add__(self, other: Objective | float) -> Objective:
        other = _wrap(other)
        return Objective(lambda b: self(b) + other(b), f"{self.description} + {other.description}")

    __radd__ = __add__

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-1.0) * _wrap(other)

    def __neg__(self) -> Objective:
        return (-1.0) * self

    def __mul__(self, other: Objective | float) -> Objective:
        other = _wrap(other)
        return Objective(lambda b: self(b) * other(b), f"{other.description} * {self.description}")

    __rmul__ = __mul__


def _wrap(value: Objective | float) -> Objective:
    if isinstance(value, Objective):
        return value
    number = float(value)
    return Objective(lambda b: tf.fill(tf.shape(b.indices), number), f"{number:g}")


def setting(name: str) -> Objective:
    """The per-image value of a render setting, e.g. the weight ``tv`` of a penalty."""
    return Objective(lambda b: b.settings[name], name)


def weighted(name: str, term: Objective) -> Objective:
    """``setting(name) * term``, with the term left uncomputed for a batch where every image's
    weight is 0 (the product is then 0 all the same): a penalty nobody asked for costs nothing,
    not even the gradient of its slices of a 512 px canvas."""
    def fn(b: Batch) -> tf.Tensor:
        w = b.settings[name]
        return tf.cond(tf.reduce_any(tf.not_equal(w, 0.0)), lambda: w * term(b),
                       lambda: tf.zeros_like(w))

    return Objective(fn, f"{name} * {term.description}")


def total_variation() -> Objective:
    """Total variation of the rendered image on the 0..1 pixel scale (a penalty term)."""
    from vissearch.engine import transforms

    def fn(b: Batch) -> tf.Tensor:
        return transforms.total_variation(b.preprocess.to_pixels(b.images) / 255.0)

    return Objective(fn, "total variation")


def target(loaded: LoadedModel, spec: TargetSpec) -> Objective:
    """The target's activation: check it against the model, return its per-image objective."""
    features, pick, description = _parts(loaded, spec)
    def fn(b: Batch) -> tf.Tensor:  # float32 whatever the network computes in
        return b.per_image(tf.cast(pick(b.features(features), b.seen_indices), tf.float32))

    return Objective(fn, description)


def class_logsumexp(loaded: LoadedModel) -> Objective:
    """The log-sum-exp of every class score, a view's mean per image: subtracted with weight 1
    from the class score it makes the log-probability, so the image gains by what tells its class
    from the others, not only by what raises its score (a shark's hammer head, not any shark).
    Below 1 the class score keeps a share of its own, whose gradient never vanishes as the
    probability nears 1."""
    features = class_scores(loaded.model)

    def fn(b: Batch) -> tf.Tensor:
        scores = tf.cast(b.features(features), tf.float32)
        return b.per_image(tf.reduce_logsumexp(scores, axis=1))

    return Objective(fn, "log-sum-exp of the class scores")


def every_target(loaded: LoadedModel, spec: TargetSpec) -> Callable[[tf.Tensor], tf.Tensor]:
    """``(images [B, ...]) => [B, targets]``: every target's activation on every image, from
    one forward pass (the best real example of each target, without one pass per target)."""
    features, pick, _ = _parts(loaded, spec)

    def values(images: tf.Tensor) -> tf.Tensor:
        out = features(images, training=False)
        b = tf.shape(images)[0]
        return tf.stack([pick(out, tf.fill([b], i)) for i in spec.indices], axis=1)

    return values


def _parts(loaded: LoadedModel, spec: TargetSpec) -> tuple[keras.Model, Callable, str]:
    """(the model up to the target's layer, ``(its output, indices [B]) => [B]``, a description)
    for a target checked against the model."""
    model = loaded.model
    if spec.kind == "class":
        features = class_scores(model)
        _check_range(spec.indices, features.output.shape[-1], "class", loaded.label)
        return features, lambda out, idx: tf.gather(out, idx, axis=1, batch_dims=1), "class logit"
    layer = _find_layer(model, spec.layer)
    shape = tuple(layer.output.shape)
    if len(shape) != 4:
        raise UserError(
            f"target.layer {shorten(spec.layer)} outputs shape {shape}, which has no channels "
            f"(kind: {spec.kind} needs a conv layer with [batch, height, width, channels])"
        )
    if spec.kind != "layer":
        _check_range(spec.indices, shape[-1], "filter", f"layer {spec.layer}")
    kind, reduce = spec.kind, spec.reduce

    def pick(out: tf.Tensor, idx: tf.Tensor) -> tf.Tensor:
        if kind == "layer":
            return tf.reduce_sum(out, axis=[1, 2, 3])
        maps = tf.gather(out, idx, axis=3, batch_dims=1)  # [B, H, W]
        if kind == "neuron":
            h, w = tf.shape(maps)[1] // 2, tf.shape(maps)[2] // 2
            return maps[:, h, w]
        return tf.reduce_mean(maps, [1, 2]) if reduce == "mean" else tf.reduce_sum(maps, [1, 2])

    description = f"{kind} {reduce} of {spec.layer}" if kind == "filter" else \
        f"{kind} of {spec.layer}"
    return keras.Model(model.inputs, layer.output), pick, description


def build(loaded: LoadedModel, spec: TargetSpec) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """The target's activation as ``(images, indices) => [B]`` (no transforms, no penalties),
    for scoring finished images."""
    objective = target(loaded, spec)

    def activation(images: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
        return objective(Batch(images, images, indices, {}, loaded.preprocess))

    return activation


_CUT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
    if model in _CUT:  # one model, so that every term of a batch shares its forward pass
        return _CUT[model]
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation) and _is_softmax(last.activation)):
        _CUT[model] = keras.Model(model.inputs, last.input)
        return _CUT[model]
    if _is_softmax(getattr(last, "activation", None)):
        last.activation = keras.activations.linear
    return model


def _is_softmax(fn: object) -> bool:
    return getattr(fn, "__name__", "") == "softmax"


def _find_layer(model: keras.Model, name: str | None) -> keras.layers.Layer:
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise UserError(f"target.layer {shorten(name)} is not in the model"
                        f"{closest(str(name), names)}")
    return model.get_layer(name)


def _check_range(indices: list[int], count: int, what: str, where: str) -> None:
    bad = [i for i in indices if i >= count]
    if bad:
        shown = bad if len(bad) <= 5 else [*bad[:5], "..."]
        plural = "classes" if what == "class" else f"{what}s"
        raise UserError(f"target.indices {shown}: {where} has {count} {plural}, "
                        f"so valid indices are 0..{count - 1}")
