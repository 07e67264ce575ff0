"""Small real models for the tests: a tiny CNN with a softmax classifier, saved as .keras."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vissearch.imageio import Preprocess  # noqa: E402
from vissearch.models.resolve import LoadedModel  # noqa: E402


def tiny_cnn(classes: int = 5, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(12, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(classes, activation="softmax", name="pred")(x)
    return keras.Model(inp, out, name="tiny")


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    tiny_cnn().save(path)
    return str(path)


@pytest.fixture()
def tiny() -> LoadedModel:
    return LoadedModel(tiny_cnn(), Preprocess.named("none"), "tiny")


@pytest.fixture()
def nan_filter_model() -> LoadedModel:
    """Filter 5 of conv2 outputs NaN (its bias); the other filters are finite.

    A NaN bias stays in that channel's forward values, so only the image that ascends filter 5
    meets it (a NaN weight would reach every image's gradient through 0 * NaN).
    """
    model = tiny_cnn()
    kernel, bias = model.get_layer("conv2").get_weights()
    bias[5] = np.nan
    model.get_layer("conv2").set_weights([kernel, bias])
    return LoadedModel(model, Preprocess.named("none"), "nan")


@pytest.fixture()
def bench_script():
    """A loader of bench/NAME.py as a module (bench/ on the path while it loads: the scripts
    import each other as ``python bench/NAME.py`` runs them)."""
    folder = str(Path(__file__).resolve().parents[1] / "bench")

    def load(name: str):
        sys.path.insert(0, folder)
        try:
            spec = importlib.util.spec_from_file_location(f"bench_{name}", f"{folder}/{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(folder)
        return module

    return load
