"""Preprocessing round trips, deprocess modes, grids and atomic PNG files."""

import os

import numpy as np
import pytest

from vissearch.imageio import Preprocess, grid, read_png, to_uint8, write_png


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch", "unit", "none"])
def test_preprocess_round_trip_and_valid_range(mode):
    pre = Preprocess.named(mode)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 5, 3))
    np.testing.assert_allclose(pre.to_pixels(pre.to_input(pixels)), pixels, atol=1e-4)
    lo, hi = pre.input_range
    np.testing.assert_allclose(pre.to_input(np.zeros(3)), lo, atol=1e-4)
    np.testing.assert_allclose(pre.to_input(np.full(3, 255.0)), hi, atol=1e-4)


def test_caffe_is_bgr_minus_the_imagenet_mean():
    pre = Preprocess.named("caffe")
    x = pre.to_input(np.array([123.68, 116.779, 103.939]))
    np.testing.assert_allclose(x, 0, atol=1e-4)
    np.testing.assert_allclose(pre.to_input(np.array([255.0, 0, 0])), [-103.939, -116.779, 131.32])


def test_keras_deprocess_centres_and_scales():
    x = np.random.default_rng(0).normal(5, 30, (16, 16, 3))
    img = to_uint8(x, Preprocess.named("none"), "keras", std=0.1)
    assert abs(img.mean() - 127.5) < 2 and abs(img.std() / 255 - 0.1) < 0.01


def test_grid_layout_with_margin_and_black_cells():
    tiles = [np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30)]
    assert grid(tiles[:2], margin=5).shape == (4, 13, 3)  # 2 columns, 1 row
    assert grid(tiles, n=3, margin=5).shape == (22, 22, 3)  # n x n when asked
    g = grid(tiles, margin=5)
    assert g.shape == (13, 13, 3)
    assert g[0, 0, 0] == 10 and g[0, 9, 0] == 20 and g[9, 0, 0] == 30 and g[9, 9, 0] == 0
    assert g[4, 0, 0] == 0  # margin


def test_write_png_is_atomic_and_round_trips(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    old = os.umask(0o022)
    try:
        path = write_png(tmp_path / "a" / "x.png", img)
    finally:
        os.umask(old)
    assert np.array_equal(read_png(path), img)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's owner-only 0600
