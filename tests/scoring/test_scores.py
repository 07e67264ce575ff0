"""Scores: each checked on images whose answer is known."""

import numpy as np
import pytest

from vissearch.engine.render import RenderResult
from vissearch.imageio import Preprocess
from vissearch.scoring import scores
from vissearch.settings.config import RenderSettings


def noise(kind: str, n: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.normal(size=(n, n))
    if kind == "white":
        return white
    f = np.fft.fftfreq(n)
    radius = np.hypot(*np.meshgrid(f, f))
    radius[0, 0] = 1.0
    return np.real(np.fft.ifft2(np.fft.fft2(white) / radius))  # amplitude 1/f: power 1/f^2


def as_result(gray_images: list[np.ndarray]) -> RenderResult:
    imgs = []
    for g in gray_images:
        g = (g - g.mean()) / (g.std() + 1e-9) * 40 + 128
        imgs.append(np.repeat(g[..., None], 3, axis=-1))
    x = np.stack(imgs).astype(np.float32)
    n = len(imgs)
    return RenderResult(indices=list(range(n)), inputs=x, activations=np.ones(n),
                        curves=np.ones((2, n)), dead=np.zeros(n, bool),
                        failed=np.zeros(n, bool), preprocess=Preprocess.named("none"),
                        settings=RenderSettings())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spectrum_slope_of_pink_and_white_noise(seed):
    assert abs(scores.spectrum_slope_of(noise("pink", seed=seed)) + 2) < 0.25
    assert abs(scores.spectrum_slope_of(noise("white", seed=seed))) < 0.25


def test_high_frequency_share_and_tv_rank_noise_above_smooth():
    pink, white = as_result([noise("pink")]), as_result([noise("white")])
    assert scores.high_frequency(white) > 0.6 > 0.25 > scores.high_frequency(pink)
    assert scores.total_variation(white) > 1.5 * scores.total_variation(pink)
    assert scores.naturalness(pink) > scores.naturalness(white)


def test_flat_image_has_no_variation():
    flat = as_result([np.zeros((32, 32))])
    assert scores.total_variation(flat) == 0


def test_failed_targets_are_left_out_of_the_scores():
    r = as_result([noise("pink"), noise("white")])
    r.failed[:] = [False, True]
    r.activations[:] = [2.0, np.nan]
    assert scores.activation(r) == 2.0
    assert scores.spectrum_slope(r) == pytest.approx(scores.spectrum_slope_of(
        np.clip(r.pixels()[0], 0, 255).mean(-1)))


def test_every_score_has_a_direction_and_help():
    for name, s in scores.SCORES.items():
        assert s.direction in ("maximize", "minimize") and s.help, name
