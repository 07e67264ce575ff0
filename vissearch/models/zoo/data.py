"""A procedural image set with no download: ``(seed, n) => images [n, 64, 64, 3] uint8, labels``.

Eleven classes mix shape, texture and colour cues: six shapes (circle, square, triangle, star,
cross, ring) drawn at a random place, size, rotation and colour, and five textures (horizontal,
vertical and diagonal stripes, checkerboard, dots) filling a random rectangle. Every image has a
smooth coloured background texture and pixel noise. The same seed gives the same images.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring",
           "hstripes", "vstripes", "dstripes", "checker", "dots")
SIZE = 64


def generate(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images with balanced labels (cycled, then shuffled), fully determined by ``seed``."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES))
    images = np.stack([draw(int(c), rng, size) for c in labels])
    return images, labels.astype(np.int32)


def draw(label: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """One image of class ``label``."""
    bg, fg = _colours(rng)
    image = _background(rng, size, bg)
    mask = (_shape if label < 6 else _texture)(label, rng, size)
    image = image * (1 - mask[..., None]) + fg * mask[..., None]
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    while True:
        bg, fg = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        if np.linalg.norm(bg - fg) > 110:
            return bg, fg


def _background(rng: np.random.Generator, size: int, colour: np.ndarray) -> np.ndarray:
    """A smooth random texture around ``colour``: low-frequency noise upsampled."""
    coarse = rng.normal(0, 18, (9, 9, 3))
    smooth = ndimage.zoom(coarse, (size / 9, size / 9, 1), order=1, mode="nearest")
    return colour + smooth[:size, :size]


def _grid(rng: np.random.Generator, size: int, rotate: float):
    """Coordinates centred on a random point and rotated by up to ``rotate`` degrees."""
    cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
    theta = np.deg2rad(rng.uniform(-rotate, rotate))
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
    v = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
    return u, v


def _shape(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    u, v = _grid(rng, size, rotate=180)
    r = rng.uniform(size * 0.16, size * 0.3)
    dist, angle = np.hypot(u, v), np.arctan2(v, u)
    name = CLASSES[label]
    if name == "circle":
        mask = dist < r
    elif name == "ring":
        mask = (dist < r) & (dist > r * 0.6)
    elif name == "square":
        mask = np.maximum(abs(u), abs(v)) < r * 0.8
    elif name == "triangle":  # equilateral, centred on its centroid
        mask = (v < r * 0.5) & (np.sqrt(3) * u - v < r) & (-np.sqrt(3) * u - v < r)
    elif name == "star":  # five points
        mask = dist < r * (0.55 + 0.45 * np.cos(5 * angle))
    else:  # cross
        arm = r * 0.32
        mask = ((abs(u) < arm) & (abs(v) < r)) | ((abs(v) < arm) & (abs(u) < r))
    return mask.astype(np.float64)


def _texture(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    name = CLASSES[label]
    u, v = _grid(rng, size, rotate=10)
    if name == "dstripes":
        u, v = (u + v) / np.sqrt(2), (v - u) / np.sqrt(2)
    period = rng.uniform(6, 11)
    phase = rng.uniform(0, period)
    if name == "hstripes":
        pattern = ((v + phase) % period) < period / 2
    elif name in ("vstripes", "dstripes"):
        pattern = ((u + phase) % period) < period / 2
    elif name == "checker":
        pattern = (np.floor((u + phase) / period) + np.floor((v + phase) / period)) % 2 == 0
    else:  # dots on a square lattice
        du = (u + phase) % period - period / 2
        dv = (v + phase) % period - period / 2
        pattern = np.hypot(du, dv) < period * 0.28
    half_h, half_w = rng.uniform(size * 0.3, size * 0.45, 2)
    region = (abs(u) < half_w) & (abs(v) < half_h)
    return (pattern & region).astype(np.float64)
