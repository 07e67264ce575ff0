"""The render engine on a tiny real CNN: the objective rises, seeds fix the bytes, NaN is
contained, and every setting the search can turn actually runs."""

import numpy as np
import pytest

from vissearch.engine.render import render
from vissearch.imageio import Preprocess
from vissearch.settings.config import RenderSettings, TargetSpec

FAST = dict(size=24, steps=24, lr=4.0, batch_size=8)


def rises(result) -> bool:
    start = np.nanmean(result.curves[:3], axis=0)
    return bool(np.all(result.activations[~result.dead] > start[~result.dead]))


@pytest.mark.parametrize(
    "kind, layer, indices",
    [("filter", "conv2", [0, 3, 7]), ("layer", "conv2", [0, 1]),
     ("neuron", "conv2", [1, 2]), ("class", None, [0, 2, 4])],
)
def test_objective_rises_for_every_target_kind(tiny, kind, layer, indices):
    target = TargetSpec(kind=kind, layer=layer, indices=indices)
    result = render(tiny, target, RenderSettings(**FAST, median_size=3, median_every=4))
    assert result.inputs.shape == (len(indices), 24, 24, 3)
    assert not result.failed.any()
    assert rises(result), result.curves[[0, -1]]


def test_same_seed_same_bytes_other_seed_other_image(tiny):
    target = TargetSpec(kind="filter", layer="conv2", indices=[0, 1])
    s = RenderSettings(**FAST, jitter=2, rotate=5, scale=0.1, blur_sigma=0.5, init="gaussian")
    a, b = render(tiny, target, s), render(tiny, target, s)
    c = render(tiny, target, s.model_copy(update={"seed": 1}))
    assert [x.tobytes() for x in a.pngs()] == [x.tobytes() for x in b.pngs()]
    assert a.inputs.tobytes() == b.inputs.tobytes()
    assert a.inputs.tobytes() != c.inputs.tobytes()


def test_nan_marks_one_target_failed_without_crashing_the_batch(nan_filter_model):
    target = TargetSpec(kind="filter", layer="conv2", indices=[0, 5, 7])
    result = render(nan_filter_model, target, RenderSettings(**FAST))
    assert result.failed.tolist() == [False, True, False]
    assert np.isfinite(result.inputs).all()
    assert result.activations[0] > np.nanmean(result.curves[:3, 0])
    assert 5 not in [result.indices[i] for i in result.ranking()]


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "rmsprop", "adam", "nadam"])
@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "linear"])
def test_every_optimizer_and_schedule_ascends(tiny, optimizer, schedule):
    target = TargetSpec(kind="class", indices=[1, 3])
    s = RenderSettings(**{**FAST, "lr": 2.0}, optimizer=optimizer, schedule=schedule,
                       lr_step_every=8)
    assert rises(render(tiny, target, s))


@pytest.mark.parametrize("extra", [
    dict(decay=0.01, clip=True), dict(blur_sigma=0.8, blur_every=2),
    dict(norm_pct=20.0, contrib_pct=10.0), dict(tv=0.5), dict(init="gray", normalize_grad=False),
    dict(param="fourier", optimizer="adam", lr=0.05, jitter=2, rotate=5.0, scale=0.1),
    dict(param="fourier", decorrelate=False, optimizer="adam", lr=0.05),
])
def test_regularizers_and_parameterizations_keep_ascending(tiny, extra):
    target = TargetSpec(kind="class", indices=[0, 2])
    result = render(tiny, target, RenderSettings(**{**FAST, **extra}))
    assert np.isfinite(result.inputs).all()
    assert rises(result)


def test_clipping_keeps_pixels_valid(tiny):
    target = TargetSpec(kind="class", indices=[0])
    result = render(tiny, target, RenderSettings(**{**FAST, "lr": 200.0}, clip=True))
    pixels = result.pixels()
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3


def test_keep_best_returns_the_best_step(tiny):
    target = TargetSpec(kind="class", indices=[0, 1])
    s = RenderSettings(**{**FAST, "lr": 30.0}, keep="best", median_size=5, median_every=3)
    result = render(tiny, target, s)
    assert np.all(result.activations >= np.nanmax(result.curves, axis=0) - 1e-4)


def test_plain_steps_skip_the_final_regularization(tiny):
    target = TargetSpec(kind="class", indices=[0])
    base = dict(**{**FAST, "steps": 8}, blur_sigma=1.0, blur_every=1)
    last = render(tiny, target, RenderSettings(**base, keep="last"))
    plain = render(tiny, target, RenderSettings(**base, keep="plain", plain_steps=1))
    # the last blur flattens the image; the plain final step leaves its unblurred detail
    tv = lambda r: np.abs(np.diff(r.inputs, axis=1)).mean()  # noqa: E731
    assert tv(plain) > tv(last)


def test_upscaling_follows_the_keras_schedule(tiny):
    s = RenderSettings(size=60, steps=12, upscale_stages=3, upscale_factor=1.2, lr=2.0)
    assert s.stages() == [(34, 4), (41, 4), (50, 4)]
    result = render(tiny, TargetSpec(kind="class", indices=[0]), s)
    assert result.inputs.shape == (1, 60, 60, 3)


def test_early_stopping_stops_a_flat_render(tiny):
    s = RenderSettings(**{**FAST, "steps": 200, "lr": 1e-6}, early_stop_window=5,
                       early_stop_tol=0.01, normalize_grad=False)
    result = render(tiny, TargetSpec(kind="class", indices=[0]), s)
    assert result.stopped == "early" and result.steps_run < 200


def test_dead_filters_are_marked_and_can_be_skipped(tiny):
    model = tiny.model
    kernel, bias = model.get_layer("conv2").get_weights()
    kernel[..., 5] = -abs(kernel[..., 5]) - 0.1
    bias[5] = -10.0
    model.get_layer("conv2").set_weights([kernel, bias])
    target = TargetSpec(kind="filter", layer="conv2", indices=[0, 5])
    result = render(tiny, target, RenderSettings(**FAST, skip_dead=True))
    assert result.dead.tolist() == [False, True]
    assert result.ranking() == [0]


def test_callback_sees_windows_and_can_stop(tiny):
    seen = []

    def cb(step, values):
        seen.append((step, values.shape))
        return step >= 20

    result = render(tiny, TargetSpec(kind="class", indices=[0, 1]),
                    RenderSettings(**{**FAST, "steps": 100}), callback=cb)
    assert seen == [(10, (2,)), (20, (2,))]
    assert result.stopped == "callback" and result.steps_run == 20


def test_both_deprocess_modes_give_uint8_rgb(tiny):
    result = render(tiny, TargetSpec(kind="class", indices=[0]), RenderSettings(**FAST))
    exact = result.pngs()[0]
    keras_mode = render(tiny, TargetSpec(kind="class", indices=[0]),
                        RenderSettings(**FAST, png="keras", png_std=0.25)).pngs()[0]
    assert exact.dtype == keras_mode.dtype == np.uint8
    assert exact.shape == keras_mode.shape == (24, 24, 3)
    pre = Preprocess.named("none")
    assert np.array_equal(exact, np.clip(np.rint(pre.to_pixels(result.inputs[0])), 0, 255))


def test_batches_report_steps_that_count_on(tiny):
    seen = []
    render(tiny, TargetSpec(kind="class", indices=[0, 1, 2]),
           RenderSettings(**{**FAST, "steps": 20, "batch_size": 2}),
           callback=lambda step, values: seen.append((step, len(values))))
    assert seen == [(10, 2), (20, 2), (30, 1), (40, 1)]


def test_grids_rank_filters_by_activation_and_keep_class_order(tiny):
    s = RenderSettings(**FAST)
    filters = render(tiny, TargetSpec(kind="filter", layer="conv2", indices=[0, 1, 2, 3]), s)
    acts = filters.activations[filters.ranking()]
    assert list(acts) == sorted(acts, reverse=True)
    classes = render(tiny, TargetSpec(kind="class", indices=[3, 0, 4]), s)
    assert classes.ranking() == [0, 1, 2]
