"""render.jit and render.precision on the CPU: XLA gives the same images within a stated
tolerance, mixed precision still ascends with finite images, and both shape the structure."""

import numpy as np
import pytest
import tensorflow as tf

from vissearch.engine import hparams, precision
from vissearch.engine.render import render
from vissearch.errors import UserError
from vissearch.settings.config import RenderSettings, TargetSpec

FAST = dict(size=24, steps=20, lr=4.0, batch_size=8)
CASES = [
    dict(median_size=3, median_every=2, blur_sigma=0.7, blur_every=3, decay=0.01),
    dict(jitter=2, scale=0.1, rotate=8.0, norm_pct=10.0, contrib_pct=5.0, keep="best"),
    dict(param="fourier", optimizer="adam", lr=0.05, jitter=1, normalize_grad=False),
    dict(param="maco", optimizer="adam", lr=0.1, crops=2, crop_min=0.6, canvas=32,
         normalize_grad=False, clip=False),
    dict(param="maco", optimizer="nadam", lr=0.1, crops=2, crop_min=0.6, canvas=32,
         crop_noise=0.04, normalize_grad=False, clip=False),
]


def rises(result) -> bool:
    start = np.nanmean(result.curves[:3], axis=0)
    alive = ~result.dead
    return bool(alive.any() and np.all(result.activations[alive] > start[alive]))


@pytest.mark.parametrize("extra", CASES)
def test_xla_renders_the_same_images(tiny, extra):
    target = TargetSpec(kind="class", indices=[0, 3])
    plain = render(tiny, target, RenderSettings(**{**FAST, **extra}))
    xla = render(tiny, target, RenderSettings(**{**FAST, **extra}, jit=True))
    # stated tolerance: 0.5 % of the pixel range after 20 steps (XLA fuses and reorders the
    # float arithmetic; its samplers reflect at the border as TensorFlow's do)
    span = np.ptp(plain.pixels())
    assert np.abs(xla.pixels() - plain.pixels()).max() < 0.005 * span
    np.testing.assert_allclose(xla.activations, plain.activations, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("kind, layer", [("class", None), ("filter", "conv2")])
def test_mixed_precision_ascends_with_finite_images(tiny, kind, layer):
    target = TargetSpec(kind=kind, layer=layer, indices=[0, 3] if kind == "class" else [0, 3, 7])
    result = render(tiny, target, RenderSettings(**FAST, precision="mixed"))
    assert np.isfinite(result.inputs).all() and result.inputs.dtype == np.float32
    assert rises(result), result.curves[[0, -1]]
    copy = precision.mixed(tiny.model)
    assert copy.get_layer("conv2").compute_dtype == "bfloat16"
    assert copy.get_layer("conv2").kernel.dtype == "float32"


def test_precision_and_jit_are_structure():
    a = RenderSettings()
    assert hparams.structure(a) != hparams.structure(a.model_copy(update={"jit": True}))
    assert hparams.structure(a) != hparams.structure(
        a.model_copy(update={"precision": "mixed"}))


def test_mixed_precision_is_refused_on_a_gpu_without_bfloat16(monkeypatch):
    gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"compute_capability": (7, 5)})
    with pytest.raises(UserError, match="compute capability 7.5, without fast bfloat16"):
        precision.check_device("mixed")
    precision.check_device("float32")  # float32 runs anywhere


def test_auto_population_fills_a_gpus_free_memory(tiny, monkeypatch):
    from vissearch.engine import budget

    target = TargetSpec(kind="class", indices=[0, 1, 2, 3])
    fixed = {"size": 160}
    per_trial = 4 * budget.bytes_per_image(tiny, target, 160)
    monkeypatch.setattr(budget, "gpu_free_bytes", lambda: None)
    on_cpu = budget.population("auto", fixed, target, tiny)
    assert on_cpu == min(budget.MAX_POPULATION, budget.MEMORY_BUDGET // per_trial)
    monkeypatch.setattr(budget, "gpu_free_bytes", lambda: 2 * 10 * per_trial)  # half is used
    assert budget.population("auto", fixed, target, tiny) == 10
    monkeypatch.setattr(budget, "gpu_free_bytes", lambda: 140 * 2**30)
    assert budget.population("auto", fixed, target, tiny) == budget.MAX_POPULATION_GPU
