"""Train the zoo's classifiers on the procedural shapes set, deterministically.

``shapes`` is the model to visualize; ``shapes-judge`` has another architecture and other data
seeds and is used only to score visualizations, never to optimize them. Both take 0..255 RGB
pixels of any size (they rescale inside and end in global average pooling) and end in a Dense
softmax layer, as most user models do.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from vissearch.models.zoo import data


@dataclass(frozen=True)
class Recipe:
    name: str
    train_seed: int
    test_seed: int
    init_seed: int
    n_train: int = 13_200
    n_test: int = 2_200
    epochs: int = 12


RECIPES = {
    "shapes": Recipe("shapes", train_seed=101, test_seed=9001, init_seed=1),
    "shapes-judge": Recipe("shapes-judge", train_seed=202, test_seed=9002, init_seed=2),
}


def build(name: str) -> keras.Model:
    """The architecture of a zoo model (untrained)."""
    classes = len(data.CLASSES)
    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inp)
    if name == "shapes":
        for i, (filters, pool) in enumerate([(16, True), (32, True), (64, True), (64, False)]):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                    name=f"conv{i + 1}")(x)
            if pool:
                x = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    else:  # the judge: strided 5x5 stem, different widths, batch norm
        x = keras.layers.Conv2D(24, 5, strides=2, padding="same", name="stem")(x)
        x = keras.layers.BatchNormalization(name="stem_bn")(x)
        x = keras.layers.ReLU(name="stem_relu")(x)
        for i, filters in enumerate([32, 64]):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                    name=f"block{i + 1}")(x)
            x = keras.layers.MaxPooling2D(name=f"block{i + 1}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name=name.replace("-", "_"))


def train(name: str, verbose: int = 0, **overrides) -> tuple[keras.Model, float, float]:
    """Train one zoo model from scratch; return it, its held-out accuracy and the seconds taken.

    ``overrides`` change fields of its :class:`Recipe` (the tests train a small one).
    """
    recipe = dataclasses.replace(RECIPES[name], **overrides)
    start = time.perf_counter()
    keras.utils.set_random_seed(recipe.init_seed)
    tf.config.experimental.enable_op_determinism()
    x, y = data.generate(recipe.n_train, recipe.train_seed)
    xt, yt = data.generate(recipe.n_test, recipe.test_seed)
    model = build(name)
    steps = recipe.epochs * int(np.ceil(len(x) / 64))
    lr = keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x.astype(np.float32), y, batch_size=64, epochs=recipe.epochs, shuffle=True,
              verbose=verbose)
    accuracy = evaluate(model, xt, yt)
    return model, accuracy, time.perf_counter() - start


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    probs = model.predict(images.astype(np.float32), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probs, axis=1) == labels))
