"""MaCo and crop robustness on the tiny CNN: the loss rises, the magnitude stays fixed, crops
and canvas behave, and a population reproduces byte for byte."""

import numpy as np
import pytest
import tensorflow as tf

from vissearch.engine import hparams, spectrum, step
from vissearch.engine.render import Member, render, render_population
from vissearch.settings.config import RenderSettings, TargetSpec

MACO = dict(size=24, steps=24, param="maco", optimizer="adam", lr=0.2, normalize_grad=False,
            clip=False, batch_size=8)


def rises(result) -> bool:
    start = np.nanmean(result.curves[:3], axis=0)
    return bool(np.all(result.activations > start))


@pytest.mark.parametrize("extra", [
    {}, dict(maco_spectrum="power", maco_alpha=1.2), dict(crops=3, crop_min=0.5),
    dict(canvas=40, crops=2, crop_min=0.4, jitter=2, rotate=5.0), dict(contrast=2.0, tv=0.2),
    dict(canvas=32, crops=3, crop_min=0.6, crop_max=0.9, crop_schedule="shrink",  # MaCo's own
         crop_center_std=0.1, crop_noise=0.04, optimizer="nadam"),
])
def test_maco_ascends(tiny, extra):
    target = TargetSpec(kind="class", indices=[0, 2])
    result = render(tiny, target, RenderSettings(**{**MACO, **extra}))
    assert np.isfinite(result.inputs).all()
    assert rises(result), result.curves[[0, -1]]


def _spectrum_of(result) -> np.ndarray:
    """|rfft2| of the image before the sigmoid (decorrelate off: the channels are the image's)."""
    p = np.clip(result.pixels().astype(np.float64) / 255.0, 1e-7, 1 - 1e-7)
    logit = np.log(p / (1 - p))
    return np.abs(np.fft.rfft2(np.moveaxis(logit, -1, 1)))  # [B, 3, H, W//2+1]


@pytest.mark.parametrize("kind", ["natural", "power"])
def test_the_magnitude_stays_fixed_while_the_phase_learns(tiny, kind):
    target = TargetSpec(kind="class", indices=[1])
    s = RenderSettings(**{**MACO, "steps": 30}, decorrelate=False, maco_spectrum=kind)
    early, late = (render(tiny, target, s, stop_at=n) for n in (1, 30))
    fixed = spectrum.magnitude(24, kind, s.maco_alpha)
    inner = (slice(None), slice(None), slice(1, None), slice(1, -1))  # not the DC or Nyquist
    for result in (early, late):
        ratio = _spectrum_of(result)[inner] / fixed[None][inner]
        # one scale for every frequency and channel: the magnitude is the fixed one
        assert ratio.std() / ratio.mean() < 1e-3
    assert np.abs(late.inputs - early.inputs).max() > 0.1  # the image did change


def test_a_population_of_maco_crop_trials_reproduces_byte_for_byte(tiny):
    target = TargetSpec(kind="class", indices=[0, 3])
    base = {**MACO, "crops": 2, "canvas": 32}
    settings = [RenderSettings(**base, seed=1),
                RenderSettings(**{**base, "lr": 0.05}, seed=2, contrast=1.8, crop_min=0.7,
                               maco_spectrum="power", jitter=3, scale=0.1),
                RenderSettings(**{**base, "optimizer": "nadam"}, seed=3, crop_center_std=0.2,
                               crop_noise=0.05)]
    first = render_population(tiny, target, [Member(s) for s in settings])
    again = render_population(tiny, target, [Member(s) for s in settings])
    assert [r.inputs.tobytes() for r in first] == [r.inputs.tobytes() for r in again]
    assert first[0].inputs.shape == (2, 32, 32, 3)  # the PNG is the canvas
    alone = render(tiny, target, settings[1])
    np.testing.assert_allclose(alone.inputs, first[1].inputs, rtol=1e-3, atol=1e-2 * 255)


def test_a_population_mixing_frames_gives_each_trial_its_own_centre(tiny):
    """The ``maco`` space samples ``frame`` per trial: one population holds PNGs of several
    sides, each the centre of the canvas it would have rendered alone."""
    target = TargetSpec(kind="class", indices=[0, 3])
    base = {**MACO, "crops": 2, "canvas": 32, "crop_center_std": 0.15}
    settings = [RenderSettings(**base, seed=1), RenderSettings(**base, seed=2, frame=0.5),
                RenderSettings(**base, seed=3, frame=0.75)]
    together = render_population(tiny, target, [Member(s) for s in settings])
    assert [r.inputs.shape[1] for r in together] == [32, 16, 24]
    for s, r in zip(settings, together, strict=True):
        alone = render(tiny, target, s)
        assert [p.shape for p in r.pngs()] == [p.shape for p in alone.pngs()]
        np.testing.assert_allclose(alone.inputs, r.inputs, rtol=1e-3, atol=1e-2 * 255)


def test_whole_crops_are_the_image_itself():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((2, 16, 16, 3)), tf.float32)
    rows = [hparams.Row(RenderSettings(crops=3, crop_min=1.0), p, 0) for p in range(2)]
    hp = {k: tf.constant(v) for k, v in hparams.pack(rows, 5).items()}
    hp["crop_uniforms"] = tf.constant(hparams.crop_uniforms(rows, 5, 3))
    crops = step._crops(images, hp, tf.constant(2), 5, 3, 16).numpy()
    assert crops.shape == (6, 16, 16, 3)
    np.testing.assert_allclose(crops, np.repeat(images.numpy(), 3, axis=0), atol=1e-5)


def test_crops_cover_a_share_of_the_image_between_crop_min_and_crop_max():
    # an image whose pixels hold their own column: a crop's span of columns is its side
    ramp = np.broadcast_to(np.arange(100, dtype=np.float32)[None, :, None], (100, 100, 3))
    images = tf.constant(np.stack([ramp] * 3))
    rows = [hparams.Row(RenderSettings(crops=8, crop_min=0.3, crop_max=0.6), p, 0)
            for p in range(3)]
    hp = {k: tf.constant(v) for k, v in hparams.pack(rows, 4).items()}
    hp["crop_uniforms"] = tf.constant(hparams.crop_uniforms(rows, 4, 8))
    crops = step._crops(images, hp, tf.constant(1), 4, 8, 20).numpy()
    spans = (crops[:, 0, -1, 0] - crops[:, 0, 0, 0]) / 99.0
    assert crops.shape == (24, 20, 20, 3)
    assert spans.min() >= 0.3 - 1e-3 and spans.max() <= 0.6 + 1e-3
    assert spans.max() - spans.min() > 0.05  # drawn, not fixed


def test_crop_settings_that_cannot_work_are_one_line():
    with pytest.raises(ValueError, match="crop_min 0.8 is above crop_max 0.5"):
        RenderSettings(crop_min=0.8, crop_max=0.5)
    with pytest.raises(ValueError, match="blur_sigma act on the pixel image; with param: maco"):
        RenderSettings(param="maco", blur_sigma=1.0)
    with pytest.raises(ValueError, match="canvas and upscale_stages"):
        RenderSettings(canvas=64, upscale_stages=2)


def test_upscaling_a_maco_image_is_refused():
    with pytest.raises(ValueError, match="upscale_stages act on the pixel image"):
        RenderSettings(**{**MACO, "size": 40}, upscale_stages=2)


def test_the_natural_magnitude_falls_like_natural_images():
    mag = spectrum.natural(64)
    f = spectrum.frequencies(64)
    ok = f > 1.5 / 64
    for channel in mag:  # decorrelated (whitened) colours: each channel falls alike
        slope = np.polyfit(np.log(f[ok]), np.log(channel[ok]), 1)[0]
        assert -1.6 < slope < -0.8  # amplitude ~ 1/f: power ~ 1/f^2
    assert np.isclose(mag.mean(), 1.0)


def test_crop_spread_keeps_crops_near_the_centre():
    ramp = np.broadcast_to(np.arange(100, dtype=np.float32)[None, :, None], (100, 100, 3))
    images = tf.constant(np.stack([ramp] * 2))

    def first_columns(spread: float) -> np.ndarray:
        rows = [hparams.Row(RenderSettings(crops=16, crop_min=0.4, crop_max=0.4,
                                           crop_spread=spread), p, 0) for p in range(2)]
        hp = {k: tf.constant(v) for k, v in hparams.pack(rows, 3).items()}
        hp["crop_uniforms"] = tf.constant(hparams.crop_uniforms(rows, 3, 16))
        return step._crops(images, hp, tf.constant(0), 3, 16, 20).numpy()[:, 0, 0, 0]

    anywhere, near, centred = (first_columns(s) for s in (1.0, 0.25, 0.0))
    np.testing.assert_allclose(centred, 0.3 * 99, atol=1e-3)  # (1 - 0.4) / 2 of the width
    assert np.abs(near - 29.7).max() <= 0.25 * 0.3 * 99 + 1e-3
    assert np.ptp(anywhere) > 2 * np.ptp(near)


def test_shrinking_crops_fall_from_crop_max_to_crop_min_over_the_steps():
    """crop_schedule shrink (MaCo's boxes): the crops' side follows the schedule, give or
    take SHRINK_SPREAD, and leaves the uniform schedule's images alone in the same batch."""
    ramp = np.broadcast_to(np.arange(100, dtype=np.float32)[None, :, None], (100, 100, 3))
    images = tf.constant(np.stack([ramp] * 2))
    rows = [hparams.Row(RenderSettings(crops=8, crop_min=0.1, crop_max=0.5, crop_spread=0.0,
                                       crop_schedule=kind), 0, 0)
            for kind in ("shrink", "uniform")]
    hp = {k: tf.constant(v) for k, v in hparams.pack(rows, 11).items()}
    hp["crop_uniforms"] = tf.constant(hparams.crop_uniforms(rows, 11, 8))

    def widths(t: int) -> np.ndarray:  # a centred crop of a ramp: its last column less its first
        out = step._crops(images, hp, tf.constant(t), 11, 8, 20).numpy()[..., 0]
        return (out[:, 0, -1] - out[:, 0, 0]).reshape(2, 8) / 99

    first, last = widths(0), widths(10)
    assert np.all(np.abs(first[0] - 0.5) <= step.SHRINK_SPREAD + 0.02)
    assert np.all(np.abs(last[0] - 0.1) <= step.SHRINK_SPREAD + 0.02)
    for row in (first[1], last[1]):  # uniform: anywhere in [0.1, 0.5], at every step
        assert row.min() >= 0.1 - 0.02 and row.max() <= 0.5 + 0.02 and np.ptp(row) > 0.1


def test_a_trial_renders_the_same_whatever_batches_ran_before_it(tiny):
    # a structure no other test uses, so that the first render below traces its step afresh
    s = RenderSettings(**{**MACO, "steps": 23}, crops=2, canvas=30, seed=4)
    target = TargetSpec(kind="class", indices=[1, 4])
    first = render(tiny, target, s)
    others = [RenderSettings(**{**MACO, "steps": 23}, crops=2, canvas=30, seed=k)
              for k in (5, 6, 7)]
    render_population(tiny, target, [Member(o) for o in others])  # another batch size
    assert render(tiny, target, s).inputs.tobytes() == first.inputs.tobytes()


def _packed(rows: list, total: int, crops: int) -> dict:
    hp = {k: tf.constant(v) for k, v in hparams.pack(rows, total).items()}
    hp["crop_uniforms"] = tf.constant(hparams.crop_uniforms(rows, total, crops))
    return hp


def test_normal_centres_gather_around_the_middle_and_may_leave_the_image():
    # columns hold 1..100: a crop's middle column tells its centre, a zero that it left
    ramp = np.broadcast_to(np.arange(1, 101, dtype=np.float32)[None, :, None], (100, 100, 3))
    images = tf.constant(np.stack([ramp] * 2))
    rows = [hparams.Row(RenderSettings(crops=64, crop_min=0.2, crop_max=0.2,
                                       crop_center_std=std), 0, 0) for std in (0.15, 0.0)]
    hp = _packed(rows, 4, 64)
    out = np.concatenate([step._crops(images, hp, tf.constant(t), 4, 64, 21).numpy()
                          for t in range(4)]).reshape(4, 2, 64, 21, 21, 3)
    middle = out[:, 0, :, 10, 10, 0].ravel()  # 256 crops of the normal image
    inside = middle > 0
    centres = (middle[inside] - 1) / 99
    assert abs(centres.mean() - 0.5) < 0.03 and 0.11 < centres.std() < 0.19
    assert (out[:, 0, ..., 0] == 0).any()  # some crops reach past the image: zeros there
    assert (out[:, 1, ..., 0] > 0).all()  # crop_center_std 0: every crop inside, as before


def test_crop_noise_has_its_std_and_stays_with_its_image(tiny):
    settings = [RenderSettings(crops=2, crop_noise=0.04, seed=1),
                RenderSettings(crops=2, seed=2), RenderSettings(crops=2, crop_noise=0.1, seed=3)]
    pre = tiny.preprocess

    def noise(order: list[int], t: int = 5) -> np.ndarray:
        rows = [hparams.Row(settings[i], 0, 0) for i in order]
        seen = tf.zeros([2 * len(order), 8, 8, 3])
        out = step._noisy(seen, _packed(rows, 9, 2), tf.constant(t), 2, pre).numpy()
        return out.reshape(len(order), 2, 8, 8, 3)

    first = noise([0, 1, 2])
    unit = 255.0 / np.asarray(pre.std)  # pixel range in the model's input units
    spread = np.sqrt(1 + 1 / 12)  # a normal plus a uniform of the same width
    for k, amount in ((0, 0.04), (2, 0.1)):
        assert abs(first[k].std() / (amount * unit.mean() * spread) - 1) < 0.1
    assert (first[1] == 0).all()  # no noise asked: none added
    np.testing.assert_array_equal(noise([2, 0])[1], first[0])  # its own, whatever its mates
    assert not np.array_equal(noise([0], t=6)[0], first[0])  # a new draw each step


def test_a_phase_offset_takes_the_bright_spot_off_the_corner(tiny):
    """A standardized phase adds up at the origin: without the offset the first image's corner
    is many standard deviations bright; with it, no brighter than the rest. The magnitude stays
    the fixed one either way, and an offset of 0 leaves the image as it was."""
    target = TargetSpec(kind="class", indices=[1])
    side = 64
    base = dict(MACO, size=side, steps=2, decorrelate=False)

    def logits(result) -> np.ndarray:
        p = np.clip(result.pixels().astype(np.float64) / 255.0, 1e-7, 1 - 1e-7)
        z = np.log(p / (1 - p))[0]
        return (z - z.mean()) / z.std()

    plain = render(tiny, target, RenderSettings(**base), stop_at=1)
    offset = render(tiny, target, RenderSettings(**base, maco_phase_offset=True), stop_at=1)
    assert np.abs(logits(plain)[0, 0]).max() > 6  # the spot
    assert np.abs(logits(offset)[0, 0]).max() < 4
    inner = (slice(None), slice(None), slice(1, None), slice(1, -1))
    fixed = spectrum.magnitude(side, "natural", 1.0)
    ratio = _spectrum_of(offset)[inner] / fixed[None][inner]
    assert ratio.std() / ratio.mean() < 1e-3


def test_photos_held_small_leave_the_finest_frequencies_almost_empty():
    full, small = spectrum.natural(64), spectrum.natural(64, seen=24)
    f = spectrum.frequencies(64)
    top, middle = f > 0.3, (f > 2 / 64) & (f < 6 / 64)
    assert small[:, top].mean() < 0.3 * full[:, top].mean()  # shrunk: little fine detail
    # coarse shapes alike (the mean of one lifts what the top frequencies gave up)
    assert 0.5 < small[:, middle].mean() / full[:, middle].mean() < 3
    assert np.isclose(small.mean(), 1.0)


def test_a_frame_keeps_the_centre_of_the_same_image_and_scores_it(tiny):
    target = TargetSpec(kind="class", indices=[0, 2])
    base = {**MACO, "canvas": 40, "crops": 2, "crop_center_std": 0.15}
    whole = render(tiny, target, RenderSettings(**base))
    framed = render(tiny, target, RenderSettings(**base, frame=0.6))
    assert framed.inputs.shape == (2, 24, 24, 3)  # 0.6 of 40 px
    np.testing.assert_array_equal(framed.inputs, whole.inputs[:, 8:32, 8:32])
    assert not np.allclose(framed.activations, whole.activations)  # the PNG's own score
    assert [p.shape for p in framed.pngs()] == [(24, 24, 3)] * 2
    with pytest.raises(ValueError, match="frame 0.1 keeps 4 px of 40"):
        RenderSettings(**base, frame=0.1)


def test_a_crop_step_built_for_one_size_is_not_reused_at_another(tiny):
    """Steps are cached per process; crops are resized to ``size``, so a step built for 24 px
    must not serve a 32 px render of an otherwise equal structure."""
    target = TargetSpec(kind="class", indices=[1])
    at32 = RenderSettings(**{**MACO, "size": 32, "crops": 2})
    step._CACHE.clear()
    alone = render(tiny, target, at32)
    step._CACHE.clear()
    render(tiny, target, RenderSettings(**{**MACO, "crops": 2}))  # 24 px first
    np.testing.assert_array_equal(render(tiny, target, at32).inputs, alone.inputs)
