"""``candidates: N``: every target rendered from N seeds, the image the judge prefers kept."""

import numpy as np
import pytest
from pydantic import ValidationError

from vissearch.engine import candidates
from vissearch.engine.render import Member, render, render_population
from vissearch.errors import UserError
from vissearch.models import resolve
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec

SHAPES = dict(size=64, steps=12, param="fourier", lr=0.05, optimizer="adam",
              normalize_grad=False, clip=False)


@pytest.fixture(scope="module")
def shapes():
    return resolve.load(ModelSpec(name="zoo/shapes"))


def test_each_kept_image_is_the_plain_render_of_its_seed_and_the_judge_preferred_it(shapes):
    target = TargetSpec(kind="class", indices=[0, 1, 2, 3])
    best = render(shapes, target, RenderSettings(**SHAPES, seed=5, candidates=3))
    alone = [render(shapes, target, RenderSettings(**SHAPES, seed=5 + k)) for k in range(3)]
    scores = np.stack([candidates.tile_probability(shapes, r.pngs(), r.indices) for r in alone])
    np.testing.assert_array_equal(best.pick_scores, scores)
    np.testing.assert_array_equal(best.picked, scores.argmax(axis=0))
    for col, k in enumerate(best.picked):
        np.testing.assert_array_equal(best.inputs[col], alone[k].inputs[col])
        np.testing.assert_array_equal(best.curves[:, col], alone[k].curves[:, col])
        assert best.activations[col] == alone[k].activations[col]
    kept = best.pick_scores[best.picked, np.arange(4)]
    assert np.all(kept == best.pick_scores.max(axis=0))
    assert best.settings.candidates == 3 and best.settings.seed == 5


def test_the_pick_follows_the_judge_not_the_seed_order(shapes):
    """At least one target keeps a later seed's image (else the pick would not be tested), and
    the whole render is reproduced bit for bit."""
    target = TargetSpec(kind="class", indices=[0, 1, 2, 3, 4, 5])
    s = RenderSettings(**SHAPES, seed=11, candidates=3)
    first, again = render(shapes, target, s), render(shapes, target, s)
    assert set(first.picked) - {0}, first.pick_scores
    np.testing.assert_array_equal(first.inputs, again.inputs)
    assert all(np.array_equal(a, b) for a, b in zip(first.pngs(), again.pngs(), strict=True))


def test_tile_probability_is_the_mean_softmax_over_nine_tiles(shapes):
    from PIL import Image
    from scipy.special import softmax

    from vissearch.engine import objectives

    img = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    assert shapes.native_size == 64  # each 48 px tile goes in at the side it was trained at
    x = np.stack([np.asarray(Image.fromarray(img[y:y + 48, x:x + 48]).resize((64, 64),
                                                                           Image.BILINEAR))
                  for y in (0, 24, 48) for x in (0, 24, 48)]).astype(np.float32)
    logits = objectives.class_scores(shapes.model)(shapes.preprocess.to_input(x)).numpy()
    expected = softmax(logits.astype(np.float64), axis=1)[:, 2].mean()
    got = candidates.tile_probability(shapes, [img], [2])
    np.testing.assert_allclose(got, [expected], rtol=1e-6)


def test_a_filter_target_keeps_its_highest_activation(tiny):
    target = TargetSpec(kind="filter", layer="conv2", indices=[0, 1, 2])
    fast = dict(size=24, steps=8, lr=2.0, optimizer="adam", normalize_grad=False)
    best = render(tiny, target, RenderSettings(**fast, seed=3, candidates=2))
    alone = [render(tiny, target, RenderSettings(**fast, seed=3 + k)) for k in range(2)]
    np.testing.assert_array_equal(
        best.activations, np.maximum(alone[0].activations, alone[1].activations))


def test_a_population_renders_each_trial_s_candidates_alone(shapes):
    target = TargetSpec(kind="class", indices=[0, 1])
    members = [Member(RenderSettings(**SHAPES, seed=s, candidates=2)) for s in (1, 9)]
    together = render_population(shapes, target, members)
    for m, got in zip(members, together, strict=True):
        np.testing.assert_array_equal(got.inputs, render(shapes, target, m.settings).inputs)
    with pytest.raises(UserError, match="cannot be halved"):
        render_population(shapes, target, members, rungs=(4,), on_rung=lambda *a: set())


def test_mistakes_are_one_line(tiny, shapes):
    with pytest.raises(ValidationError, match="picks among candidates"):
        RenderSettings(judge="zoo/efficientnet-lite2")
    with pytest.raises(ValidationError, match="candidates"):
        RenderSettings(candidates=0)
    target = TargetSpec(kind="filter", layer="conv2", indices=[0])
    with pytest.raises(UserError, match="a filter target's candidates are compared by"):
        render(tiny, target, RenderSettings(size=24, steps=2, candidates=2, judge="zoo/shapes"))
    with pytest.raises(UserError, match="is not one of them"):
        candidates.tile_probability(shapes, [np.zeros((32, 32, 3), np.uint8)], [999])

