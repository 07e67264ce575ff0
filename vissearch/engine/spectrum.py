"""Magnitude spectra for ``param: maco``: ``(side, settings) => [3, side, side // 2 + 1]``.

MaCo (Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with MAgnitude
Constrained Optimization") optimizes only the phase of an image's Fourier spectrum and keeps its
magnitude fixed at that of natural images, so the image keeps their balance of coarse and fine
structure whatever the ascent does. Two magnitudes are offered, both available offline:

- ``natural``: the mean magnitude of the colour photos that ship inside scikit-image
  (:data:`PHOTOS`), in the decorrelated colour space the parameterization works in, averaged
  over :data:`CROPS_PER_PHOTO` random square crops of each photo and their mirror images
  (Hann-windowed, so that the crops' borders add no spurious horizontal and vertical energy), and
  smoothed over neighbouring frequencies so that five photos give a smooth spectrum;
- ``power``: ``1 / f**alpha``, the same for the three colour channels.

Both are scaled to a mean of one: the parameterization standardizes the image, so only the
shape of the magnitude matters. No TensorFlow here; the arrays are cached per side.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

# The colour photos of scikit-image that need no download (name, loader attribute).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")
CROPS_PER_PHOTO = 8
SEED = 2023  # the crops' positions

# Square root of the ImageNet colour covariance (RGB), as in Olah et al.: its columns decorrelate
# the three channels so that each spectrum coefficient moves a natural colour direction.
COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
COLOR_SQRT_NORMALIZED = COLOR_SQRT / np.max(np.linalg.norm(COLOR_SQRT, axis=0))


def photos() -> list[np.ndarray]:
    """The natural colour photos as float RGB ``[H, W, 3]`` in 0..255."""
    from skimage import data

    out = []
    for name in PHOTOS:
        img = getattr(data, name)()
        img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disp)
        out.append(np.asarray(img[..., :3], np.float32))
    return out


def frequencies(side: int) -> np.ndarray:
    """``[side, side//2+1]`` radial frequency of each rfft2 coefficient, at least 1/side."""
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    return np.maximum(np.sqrt(fx**2 + fy**2), 1.0 / side)


def power(side: int, alpha: float) -> np.ndarray:
    """``[3, side, side//2+1]`` magnitude ``1/f**alpha``, mean one."""
    mag = frequencies(side) ** -float(alpha)
    return np.broadcast_to(mag / mag.mean(), (3, *mag.shape)).astype(np.float32)


@functools.cache
def natural(side: int, seen: int = 0) -> np.ndarray:
    """``[3, side, side//2+1]`` mean magnitude of the photos' decorrelated colour channels;
    ``seen`` above 0: each crop shrunk to ``seen`` pixels first, then enlarged to ``side``, as
    the photos of a data set like ImageNet are held at about the model's resolution (the finest
    frequencies of the canvas then carry almost nothing)."""
    rng = np.random.default_rng(SEED)
    unmix = np.linalg.inv(COLOR_SQRT_NORMALIZED.T).astype(np.float64)
    total = np.zeros((3, side, side // 2 + 1))
    hann = np.hanning(side)
    window = (hann[:, None] * hann[None, :])[..., None]  # no edges where the crop ends
    count = 0
    for img in photos():
        h, w, _ = img.shape
        crop = min(h, w)
        for _ in range(CROPS_PER_PHOTO):
            y0, x0 = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
            patch = img[y0:y0 + crop, x0:x0 + crop] / 255.0
            if seen:
                patch = ndimage.zoom(patch, (seen / crop, seen / crop, 1), order=1)
            patch = ndimage.zoom(patch, (side / patch.shape[0], side / patch.shape[1], 1),
                                 order=1)[:side, :side]
            for view in (patch, patch[:, ::-1]):
                decorrelated = ((view - view.mean(axis=(0, 1))) @ unmix) * window
                spectrum = np.fft.rfft2(np.moveaxis(decorrelated, -1, 0))
                total += np.abs(spectrum)
                count += 1
    mag = total / count
    # smooth in log space over neighbouring frequencies (the full axis wraps around)
    log = ndimage.uniform_filter(np.log(mag + 1e-8), size=(1, 3, 3),
                                 mode=("nearest", "wrap", "nearest"))
    mag = np.exp(log)
    mag[:, 0, 0] = 0.0  # no constant offset: the image is centred anyway
    return (mag / mag.mean()).astype(np.float32)


def magnitude(side: int, kind: str, alpha: float, seen: int = 0) -> np.ndarray:
    """The fixed magnitude of one image: ``kind`` is ``natural`` (its photos shrunk to ``seen``
    pixels first where that is above 0) or ``power``."""
    if kind == "natural":
        return natural(side, seen)
    if kind == "power":
        return power(side, alpha)
    raise ValueError(f"unknown maco_spectrum {kind!r}: natural or power")
