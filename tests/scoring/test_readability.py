"""Readability scores: the bands are the natural photos' own, photos sit inside them, and busy
noise, a grey field and fine noise each fall outside."""

import numpy as np
import pytest
from scipy import ndimage

from vissearch.engine import spectrum
from vissearch.engine.render import RenderResult
from vissearch.imageio import Preprocess
from vissearch.scoring import readability, scores
from vissearch.settings.config import RenderSettings


def as_result(images: list[np.ndarray]) -> RenderResult:
    x = np.stack(images).astype(np.float32)
    n = len(images)
    return RenderResult(indices=list(range(n)), inputs=x, activations=np.ones(n),
                        curves=np.ones((2, n)), dead=np.zeros(n, bool),
                        failed=np.zeros(n, bool), preprocess=Preprocess.named("none"),
                        settings=RenderSettings())


def test_the_bands_are_the_natural_photos_range():
    values = readability.natural_values()
    for name, (lo, hi) in readability.BANDS.items():
        seen = values[name]
        assert lo <= min(seen) and max(seen) <= hi, name
        assert min(seen) - lo < 0.02 * hi and hi - max(seen) < 0.02 * hi, (name, seen)


def test_every_photo_reads_and_scores_zero_penalty():
    for photo in spectrum.photos():
        assert readability.penalty(photo) == 0.0


def _busy(seed: int = 0) -> np.ndarray:
    """Saturated blobs and edges everywhere: smoothed noise at a collage's contrast."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.normal(size=(224, 224, 3)), (2, 2, 0))
    return np.clip(128 + x / x.std() * 110, 0, 255)


def _object_on_grey() -> np.ndarray:
    """The busy texture inside a disc in the middle of a flat grey image."""
    y, x = np.indices((224, 224))
    disc = (np.hypot(y - 112, x - 112) < 60)[..., None]
    return np.where(disc, _busy(), 128.0)


def test_edges_gathered_on_an_object_spread_less_than_texture_everywhere():
    gathered, everywhere = (readability.edge_spread(i) for i in (_object_on_grey(), _busy()))
    lo, hi = readability.BANDS["edge_spread"]
    assert gathered < lo + 0.05 and everywhere > 0.4 > hi


@pytest.mark.parametrize("image, failing", [
    (_busy(), {"edge_energy", "edge_density", "edge_spread"}),
    (np.full((224, 224, 3), 128.0) + np.random.default_rng(1).normal(0, 1, (224, 224, 3)),
     {"edge_energy", "rms_contrast"}),
    (np.clip(128 + np.random.default_rng(2).normal(0, 20, (224, 224, 3)), 0, 255),
     {"fine_edges"}),
])
def test_collages_grey_fields_and_noise_fall_outside(image, failing):
    outside = {name for name, fn in readability.MEASURES.items()
               if readability.outside(fn(image), readability.BANDS[name]) > 0}
    assert failing <= outside
    assert readability.penalty(image) > 0.3


def test_outside_is_a_log_distance():
    assert readability.outside(50.0, (20.0, 100.0)) == 0.0
    assert readability.outside(200.0, (20.0, 100.0)) == pytest.approx(np.log(2))
    assert readability.outside(10.0, (20.0, 100.0)) == pytest.approx(np.log(2))
    # a flat image: far below, but finite, so that one dead filter does not make a trial fail
    assert readability.outside(0.0, (20.0, 100.0)) == pytest.approx(np.log(readability.FLOOR))
    assert readability.outside(1e-9, (20.0, 100.0)) == readability.outside(0.0, (20.0, 100.0))
    assert readability.outside(float("nan"), (20.0, 100.0)) == pytest.approx(np.log(1000))
    flat = np.full((64, 64, 3), 128.0, np.float32)  # a dead filter's image
    assert readability.penalty(flat) == pytest.approx(len(readability.NAMES) * np.log(1000))


def test_readable_transfer_is_transfer_less_the_penalty():
    photo = np.asarray(spectrum.photos()[0][:224, :224], np.float32)
    result = as_result([photo, _busy()])

    class Judge:  # the judge names the class on every view of both images
        def judge_probs(self, r):
            probs = np.zeros((2, 9, 5))
            probs[0, :, 0] = probs[1, :, 1] = 1.0
            return probs

    transfer = scores.transfer(result, Judge())
    readable = scores.readable_transfer(result, Judge())
    assert transfer == 1.0
    penalties = [readability.penalty(photo), readability.penalty(_busy())]
    assert penalties[1] > 0.3
    assert readable == pytest.approx(1.0 - np.mean(penalties))
    assert scores.SCORES["edge_energy"].fn(result) == pytest.approx(
        (readability.edge_energy(photo) + readability.edge_energy(_busy())) / 2)
