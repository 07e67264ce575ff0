"""The in-graph image operations equal their scipy / NumPy definitions."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from vissearch.engine import transforms


@pytest.fixture()
def images():
    rng = np.random.default_rng(3)
    return (rng.normal(size=(2, 23, 19, 3)) * 60 + 10).astype(np.float32)


@pytest.mark.parametrize("sigma", [0.3, 0.5, 0.8, 1.0, 2.0])
def test_blur_equals_scipy(images, sigma):
    ours = transforms.blur(tf.constant(images), sigma).numpy()
    ref = ndimage.gaussian_filter(images.astype(np.float64), sigma=(0, sigma, sigma, 0))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-4 * np.abs(images).max())


@pytest.mark.parametrize("size", [3, 5])
def test_median_equals_scipy_exactly(images, size):
    ours = transforms.median(tf.constant(images), size).numpy()
    ref = ndimage.median_filter(images, size=(1, size, size, 1))
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("pct", [0.0, 10.0, 37.5, 50.0, 99.0])
def test_percentile_equals_numpy(pct):
    values = np.random.default_rng(1).normal(size=(3, 101)).astype(np.float32)
    ours = transforms.percentile(tf.constant(values), pct).numpy()
    np.testing.assert_allclose(ours, np.percentile(values, pct, axis=1), rtol=1e-5, atol=1e-6)


def test_zero_below_sets_the_faint_share_to_center(images):
    norm = np.linalg.norm(images, axis=-1)
    out = transforms.zero_below(tf.constant(images), tf.constant(norm), 50.0, tf.zeros(3)).numpy()
    zeroed = np.all(out == 0, axis=-1)
    assert 0.45 < zeroed.mean() < 0.55
    kept = norm >= np.percentile(norm.reshape(2, -1), 50, axis=1)[:, None, None]
    assert np.array_equal(out[kept], images[kept])


def test_random_affine_keeps_shape_and_passes_gradient(images):
    x = tf.Variable(images)
    uniforms = tf.constant(np.random.default_rng(0).random((2, 4)), tf.float32)
    with tf.GradientTape() as tape:
        y = transforms.random_affine(x, uniforms, jitter=3, scale=0.1, rotate=10.0)
        total = tf.reduce_sum(y * y)
    assert y.shape == images.shape
    assert float(tf.reduce_sum(tf.abs(tape.gradient(total, x)))) > 0


def test_total_variation_is_zero_on_flat_images():
    flat = tf.ones([2, 8, 8, 3])
    assert np.allclose(transforms.total_variation(flat).numpy(), 0)


def test_per_image_where_takes_whole_images_as_tf_where_does():
    from vissearch.engine import optimizers

    rng = np.random.default_rng(5)
    a, b = (tf.constant(rng.normal(size=(4, 3, 6, 4, 2)).astype(np.float32)) for _ in range(2))
    mine = tf.constant([True, False, False, True])
    ours = optimizers.where(mine, a, b).numpy()
    assert np.array_equal(ours, tf.where(tf.reshape(mine, [-1, 1, 1, 1, 1]), a, b).numpy())
    assert np.array_equal(ours[1], b.numpy()[1]) and np.array_equal(ours[3], a.numpy()[3])


def test_a_penalty_weighs_each_image_and_adds_nothing_when_no_image_asks_for_it():
    from vissearch.engine import objectives
    from vissearch.imageio import Preprocess

    imgs = tf.constant(np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32))
    term = tf.function(objectives.weighted("tv", objectives.total_variation()))

    def batch(weights):
        return objectives.Batch(imgs, imgs, tf.constant([0, 1]),
                                {"tv": tf.constant(weights, tf.float32)}, Preprocess("none"))

    full = objectives.total_variation()(batch([1.0, 1.0])).numpy()
    assert (full > 0).all()
    assert np.array_equal(term(batch([0.0, 0.0])).numpy(), [0.0, 0.0])
    assert np.array_equal(term(batch([0.5, 0.0])).numpy(), [np.float32(0.5) * full[0], 0.0])
