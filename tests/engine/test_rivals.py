"""``rivals``: a class target less a share of the log-sum-exp of every class score (1: the
log-probability), on the tiny CNN whose classifier ends in a softmax."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax

from vissearch.engine import objectives, step
from vissearch.engine.render import render
from vissearch.errors import UserError
from vissearch.imageio import Preprocess
from vissearch.models import resolve
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec

FAST = dict(size=24, steps=24, lr=2.0, optimizer="adam", normalize_grad=False)


def test_the_ascended_value_is_the_score_less_its_share_of_the_log_sum_exp(tiny):
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 3)), tf.float32)
    indices = tf.constant([0, 2, 4])
    rivals = tf.constant([0.0, 0.5, 1.0])
    batch = objectives.Batch(images, images, indices, {"tv": tf.zeros(3), "rivals": rivals},
                             Preprocess("none"))
    _, ascend = step.objective_of(tiny, TargetSpec(kind="class", indices=[0, 2, 4]))
    scores = objectives.class_scores(tiny.model)(images).numpy().astype(np.float64)
    picked = scores[np.arange(3), [0, 2, 4]]
    lse = np.log(np.exp(scores).sum(axis=1))
    np.testing.assert_allclose(ascend(batch).numpy(), picked - rivals.numpy() * lse, rtol=1e-5)


def test_with_rivals_every_shapes_class_wins_its_own_image():
    """On the project's shapes classifier the class score alone leaves two classes to a
    neighbour (its score rises, the neighbour's more); less the log-sum-exp, each wins."""
    shapes = resolve.load(ModelSpec(name="zoo/shapes"))
    classes = list(range(shapes.model.output.shape[-1]))
    target = TargetSpec(kind="class", indices=classes)

    def log_prob(rivals: float) -> np.ndarray:
        s = RenderSettings(size=64, steps=24, param="fourier", lr=0.05, optimizer="adam",
                           normalize_grad=False, clip=False, rivals=rivals)
        scores = objectives.class_scores(shapes.model)(render(shapes, target, s).inputs).numpy()
        return log_softmax(scores, axis=1)[classes, classes]

    plain, rival = log_prob(0.0), log_prob(1.0)
    assert np.all(rival > np.log(0.5)), rival
    assert rival.min() > plain.min() + 1.0, (rival, plain)


def test_rivals_is_for_class_targets_only(tiny):
    target = TargetSpec(kind="filter", layer="conv2", indices=[0])
    with pytest.raises(UserError, match="rivals applies to class targets only"):
        render(tiny, target, RenderSettings(**FAST, rivals=0.5))


def test_a_separate_softmax_layer_is_cut_once_for_both_terms():
    """A model ending in its own Softmax layer: the class score and the log-sum-exp read the
    same cut model (one forward pass a batch), whose outputs are the scores before softmax."""
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    model = keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(3)(x)))
    cut = objectives.class_scores(model)
    assert cut is not model and objectives.class_scores(model) is cut
    images = tf.constant(np.random.default_rng(1).uniform(0, 1, (2, 8, 8, 3)), tf.float32)
    np.testing.assert_allclose(tf.nn.softmax(cut(images)).numpy(), model(images).numpy(),
                               rtol=1e-5)
