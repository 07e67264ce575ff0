"""Populations: many trials in one batch give each trial the bytes it gets alone; halving stops
the worse trials at rungs, and a stopped trial renders again to the same bytes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vissearch.engine import halving, optimizers
from vissearch.engine.render import Member, render, render_population
from vissearch.settings.config import RenderSettings, TargetSpec

BASE = dict(size=24, steps=30, lr=3.0, batch_size=64)
MATES = [  # batch-mates that differ from the base in every per-image setting
    dict(optimizer="adam", lr=0.5, schedule="cosine", normalize_grad=False, blur_sigma=0.8,
         blur_every=2, median_size=5, median_every=3, jitter=2, scale=0.1, rotate=8.0,
         tv=0.3, keep="best", decay=0.01, clip=False, init="gaussian", seed=7),
    dict(optimizer="nesterov", momentum=0.7, schedule="step", lr_step_every=5,
         norm_pct=20.0, contrib_pct=10.0, median_size=3, keep="plain", plain_steps=3,
         init="gray", seed=9),
]


@pytest.fixture()
def target():
    return TargetSpec(kind="class", indices=[0, 3])


def close(a, b) -> bool:
    """Equal up to the last bits that a CPU's batched convolutions may change."""
    return np.allclose(a.inputs, b.inputs, rtol=1e-3, atol=1e-2 * np.abs(b.inputs).max())


def test_each_trial_of_a_population_renders_with_its_own_settings(tiny, target):
    settings = [RenderSettings(**BASE, seed=3), *(RenderSettings(**{**BASE, **m}) for m in MATES)]
    for order in (settings, settings[::-1]):
        together = render_population(tiny, target, [Member(s) for s in order])
        for s, r in zip(order, together, strict=True):
            assert r.settings == s
            assert close(r, render(tiny, target, s)), s


def test_a_replayed_population_gives_identical_bytes(tiny, target):
    settings = [RenderSettings(**BASE, seed=3), *(RenderSettings(**{**BASE, **m}) for m in MATES)]
    first = render_population(tiny, target, [Member(s) for s in settings])
    again = render_population(tiny, target, [Member(s) for s in settings])
    assert [r.inputs.tobytes() for r in first] == [r.inputs.tobytes() for r in again]


def test_halving_stops_the_worse_half_at_each_rung_and_a_stopped_trial_reproduces(tiny, target):
    settings = [RenderSettings(**{**BASE, "seed": s, "lr": lr}) for s, lr in
                zip(range(4), (0.01, 5.0, 0.02, 4.0), strict=True)]
    seen = []

    def on_rung(step, interim):
        values = {k: (float(np.mean(r.activations)),) for k, r in interim.items()}
        seen.append((step, sorted(values)))
        return set(values) - halving.survivors(values, 0.5, maximize=(True,))

    results = render_population(tiny, target, [Member(s) for s in settings], rungs=(10, 20),
                                on_rung=on_rung)
    assert seen == [(10, [0, 1, 2, 3]), (20, [1, 3])]
    assert sorted(r.steps_run for r in results) == [10, 10, 20, 30]
    assert {k for k, r in enumerate(results) if r.steps_run == 10} == {0, 2}  # the tiny lrs
    assert sum(r.stopped == "pruned" for r in results) == 3
    # the population again, each member forced to stop where it stopped: the same bytes
    replay = render_population(tiny, target, [
        Member(r.settings, stop_at=r.steps_run if r.stopped else None, stopped=r.stopped)
        for r in results])
    assert [r.inputs.tobytes() for r in replay] == [r.inputs.tobytes() for r in results]
    assert [r.stopped for r in replay] == [r.stopped for r in results]


def test_rungs_are_window_multiples_inside_the_render():
    assert halving.rung_steps((0.125, 0.25, 0.5), 160, 10) == (20, 40, 80)
    assert halving.rung_steps((0.01, 0.5, 0.99), 100, 10) == (10, 50)
    nan = float("nan")
    assert halving.survivors({0: (1.0,), 1: (nan,), 2: (3.0,)}, 0.5, (True,)) == {2, 0}
    assert halving.survivors({0: (1.0,), 1: (2.0,)}, 0.1, (False,)) == {0}
    ties = {0: (0.0, 1.0), 1: (0.0, 5.0), 2: (0.0, 3.0), 3: (0.5, 0.0)}
    assert halving.survivors(ties, 0.5, (True, True)) == {3, 1}  # the second breaks the tie


@pytest.mark.parametrize("name, keras_optimizer", [
    ("sgd", lambda lr: keras.optimizers.SGD(lr)),
    ("nesterov", lambda lr: keras.optimizers.SGD(lr, momentum=0.8, nesterov=True)),
    ("rmsprop", lambda lr: keras.optimizers.RMSprop(lr)),
    ("adam", lambda lr: keras.optimizers.Adam(lr)),
    ("nadam", lambda lr: keras.optimizers.Nadam(lr)),
])
def test_the_per_image_rules_are_keras_own(name, keras_optimizer):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(2, 5, 5, 3)).astype(np.float32) for _ in range(6)]
    var = tf.Variable(np.zeros((2, 5, 5, 3), np.float32))
    opt = keras_optimizer(0.1)
    code = list(optimizers.OPTIMIZERS).index(name)
    hp = {"optimizer": tf.fill([2], code), "schedule": tf.zeros([2], tf.int32),
          "lr": tf.fill([2], 0.1), "momentum": tf.fill([2], 0.8), "lr_final": tf.zeros([2]),
          "lr_step_every": tf.ones([2]), "lr_step_gamma": tf.ones([2])}
    ours = tf.zeros_like(var)
    state = {k: tf.zeros_like(var) for k in optimizers.STATE}
    for t, g in enumerate(grads):
        opt.apply_gradients([(tf.constant(g), var)])
        delta, state = optimizers.update(tf.constant(g), state, hp, tf.constant(t), 6)
        ours = ours + delta
    np.testing.assert_allclose(ours.numpy(), var.numpy(), rtol=1e-5, atol=1e-6)
