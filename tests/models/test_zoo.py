"""The zoo: procedural data, shipped models that reach their accuracy, deterministic training."""

import numpy as np
import pytest
import tensorflow as tf

from vissearch.engine.render import RenderResult, render
from vissearch.models import resolve as models
from vissearch.models import zoo
from vissearch.models.zoo import data, train
from vissearch.scoring.evaluate import Evaluator
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec


def test_data_is_deterministic_balanced_and_varied():
    a, la = data.generate(110, seed=3)
    b, lb = data.generate(110, seed=3)
    c, _ = data.generate(110, seed=4)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    assert a.shape == (110, 64, 64, 3) and a.dtype == np.uint8
    assert np.bincount(la).tolist() == [10] * len(data.CLASSES)
    assert a.std(axis=(1, 2, 3)).min() > 10  # every image has content


@pytest.fixture(scope="module")
def held_out():
    return data.generate(1100, seed=424242)  # a seed neither model was trained or tested on


@pytest.mark.parametrize("name", [n for n, m in zoo.ZOO.items() if m.classes == "shapes"])
def test_shipped_models_reach_95_percent_on_fresh_images(name, held_out):
    images, labels = held_out
    loaded = models.load(ModelSpec(name=name))
    assert train.evaluate(loaded.model, images, labels) >= 0.95


def test_training_is_deterministic():
    small = dict(n_train=220, n_test=110, epochs=1)
    m1, acc1, _ = train.train("shapes", **small)
    m2, acc2, _ = train.train("shapes", **small)
    assert acc1 == acc2
    for w1, w2 in zip(m1.get_weights(), m2.get_weights(), strict=True):
        assert np.array_equal(w1, w2)


def test_zoo_names_work_wherever_a_model_is_named():
    loaded = models.load(ModelSpec(name="zoo/shapes"))
    assert loaded.label == "zoo/shapes"
    result = render(loaded, TargetSpec(kind="filter", layer="conv3", indices=[0, 1]),
                    RenderSettings(size=32, steps=5))
    assert result.inputs.shape == (2, 32, 32, 3)


def real_result(images, labels, activations) -> RenderResult:
    n = len(labels)
    return RenderResult(indices=[int(c) for c in labels], inputs=images.astype(np.float32),
                        activations=activations, curves=np.ones((1, n)), dead=np.zeros(n, bool),
                        failed=np.zeros(n, bool), preprocess=models.Preprocess.named("none"),
                        settings=RenderSettings(size=64))


def test_judge_transfer_and_probability_are_high_on_real_images():
    images, labels = data.generate(22, seed=99)
    loaded = models.load(ModelSpec(name="zoo/shapes"))
    # one class per image: score each real image as if it had been rendered for its class
    order = np.argsort(labels, kind="stable")[::2]
    target = TargetSpec(kind="class", indices=[int(c) for c in labels[order]])
    ev = Evaluator(loaded, target, "zoo/shapes-judge")
    x, idx = images[order].astype(np.float32), labels[order].astype(np.int32)
    activations = ev.objective(tf.constant(x), tf.constant(idx)).numpy()
    scores = ev(real_result(images[order], labels[order], activations))
    assert scores["transfer"] >= 0.9 and scores["transfer_prob"] >= 0.8
    assert scores["probability"] >= 0.9
    assert 0.5 < scores["robustness"] < 1.5
