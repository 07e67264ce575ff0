"""Readability of an image, measured against natural photos: ``(pixels [H, W, 3]) => float``.

A person reads a picture with a few objects on a calmer ground, at a photo's contrast. Five
measures separate such images from the two failures of feature visualization, the busy collage
(edges everywhere, blown-out contrast) and the grey field (nothing left), and from
high-frequency noise. Each is computed on the image resized to :data:`SIDE` px and averaged over
RGB (0..255 scale), and each has a band: the range it spans over the natural colour photos that
ship with scikit-image (:data:`vissearch.engine.spectrum.PHOTOS`), in :data:`BANDS`.

- ``edge_energy``: the mean Sobel gradient magnitude. Photos 27-106; a searched collage 164-207,
  lucid-style images 129-152; a grey field 3.
- ``edge_density``: the share of pixels whose Sobel magnitude is above :data:`STRONG_EDGE`.
  Photos 0.075-0.38; collages 0.6-0.8: clutter, not just contrast.
- ``fine_edges``: edge energy at 224 px over edge energy at 56 px. Photos 0.52-0.76; naive
  ascent's noise 2.7-3.2 (fine structure without coarse structure).
- ``rms_contrast``: the standard deviation of the grey image. Photos 28-73; washed-out or flat
  images fall below.
- ``edge_spread``: the share of the image's 16 px blocks that hold half its edge energy. Photos
  0.16-0.31: their edges gather on objects and leave calm ground. Every visualization tried
  spreads them wider, 0.30-0.45, and MaCo's textures (0.44) and lucid-style collages (0.43) the
  widest: this is the measure that tells "a few things on a ground" from "texture everywhere".

``penalty`` is how far outside the bands an image lies, summed over the measures in log units
(0 inside all of them): ``readability`` scores it (0 is best) and ``readable_transfer`` subtracts
it from the judge's ``transfer`` (:mod:`vissearch.scoring.scores`). Colour statistics (saturation,
clipped share, colourfulness) were tried and do not separate collages from photos.

No TensorFlow here. ``python -m vissearch.scoring.readability`` prints the photos' values, from
which :data:`BANDS` were copied (tests/scoring/test_readability.py checks that they still match).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

SIDE = 224  # the side the measures see
COARSE = 56  # the side of the coarse view of fine_edges
STRONG_EDGE = 100.0  # a Sobel magnitude that counts as a strong edge (0..255 scale)
BLOCK = 16  # the side of the blocks of edge_spread (224 = 14 x 16)


def gray(pixels: np.ndarray, side: int = SIDE) -> np.ndarray:
    """The RGB pixels (0..255) averaged over channels, resized to ``side`` (bilinear)."""
    g = np.clip(np.asarray(pixels, np.float32), 0, 255).mean(axis=-1)
    return np.asarray(Image.fromarray(g, mode="F").resize((side, side), Image.BILINEAR))


def _sobel(g: np.ndarray) -> np.ndarray:
    return np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1))


def measures(pixels: np.ndarray) -> dict[str, float]:
    """Every measure of one image, from one grey image and one Sobel pass."""
    g = gray(pixels)
    edges = _sobel(g)
    energy = float(edges.mean())
    coarse = _sobel(gray(pixels, COARSE)).mean()
    return {
        "edge_energy": energy,
        "edge_density": float((edges > STRONG_EDGE).mean()),
        "fine_edges": float(energy / coarse) if coarse > 1e-6 else float("nan"),
        "rms_contrast": float(g.std()),
        "edge_spread": _spread(edges),
    }


def _spread(edges: np.ndarray) -> float:
    """The share of BLOCK-px blocks that hold half the edge energy."""
    n = SIDE // BLOCK
    energy = edges.reshape(n, BLOCK, n, BLOCK).sum(axis=(1, 3)).ravel()
    if energy.sum() <= 0:
        return float("nan")
    cumulative = np.cumsum(np.sort(energy)[::-1]) / energy.sum()
    return float((np.searchsorted(cumulative, 0.5) + 1) / energy.size)


def _one(name: str):
    def measure(pixels: np.ndarray) -> float:
        return measures(pixels)[name]

    measure.__name__ = name
    return measure


NAMES = ("edge_energy", "edge_density", "fine_edges", "rms_contrast", "edge_spread")
MEASURES = {name: _one(name) for name in NAMES}  # each measure alone, by name
edge_energy, edge_density, fine_edges, rms_contrast, edge_spread = MEASURES.values()

# Each measure's (min, max) over the natural photos, rounded outwards (python -m
# vissearch.scoring.readability prints them).
BANDS = {
    "edge_energy": (26.4, 105.6),
    "edge_density": (0.074, 0.379),
    "fine_edges": (0.52, 0.77),
    "rms_contrast": (27.5, 73.1),
    "edge_spread": (0.163, 0.312),
}


FLOOR = 1000.0  # how far below a band an image with none of the measure counts


def outside(value: float, band: tuple[float, float]) -> float:
    """How far ``value`` lies outside ``band`` in log units (0 inside). A flat or edge-free
    image (a value of 0, or a ratio of edges it does not have: a dead filter's grey field)
    counts as FLOOR times below the band, so that one such image marks a trial down without
    making its score infinite."""
    lo, hi = band
    if not np.isfinite(value):  # a ratio a flat image does not have (no edges at all)
        return float(np.log(FLOOR))
    if value > hi:
        return float(np.log(value / hi))
    if value < lo:
        return float(np.log(lo / max(value, lo / FLOOR)))
    return 0.0


def penalty(pixels: np.ndarray) -> float:
    """The sum over the measures of how far the image lies outside the photos' bands."""
    return penalty_of(measures(pixels))


def penalty_of(values: dict[str, float]) -> float:
    """:func:`penalty` from the image's :func:`measures`."""
    return sum(outside(values[name], BANDS[name]) for name in NAMES)


def natural_values() -> dict[str, list[float]]:
    """Each measure on each natural photo, in :data:`vissearch.engine.spectrum.PHOTOS` order."""
    from vissearch.engine import spectrum

    per_photo = [measures(p) for p in spectrum.photos()]
    return {name: [m[name] for m in per_photo] for name in NAMES}


if __name__ == "__main__":
    from vissearch.engine import spectrum

    for measure, values in natural_values().items():
        shown = ", ".join(f"{n} {v:.3f}" for n, v in zip(spectrum.PHOTOS, values, strict=True))
        print(f"{measure}: {min(values):.3f} .. {max(values):.3f}  ({shown})")
