"""Image parameterizations: ``(rows, side) => variable [B, ...] => images [B, H, W, 3]``.

A :class:`Param` turns the optimized variable into model-input images. ``pixel`` optimizes the
RGB pixel image itself (0..255 scale), as the Keras example and the blog do with VGG16, so their
learning rates keep their meaning on every model whatever its input scaling, and the in-place
pixel regularizers (:mod:`vissearch.engine.regularizers`) act on it. ``fourier`` optimizes a
spectrum scaled by 1/f whose colours are decorrelated and squashed into the valid range by a
sigmoid (Olah et al. 2017, "Feature Visualization"); ``maco`` optimizes only the phase of a
spectrum whose magnitude is fixed at natural images' (Fel et al. 2023). Nothing acts on these two
in place.

:data:`PARAMS` and :data:`INITS` are the registries the config's ``param`` and ``init`` name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import tensorflow as tf

from vissearch.engine import optimizers, spectrum
from vissearch.engine.hparams import PHASE, START, Row, image_rng
from vissearch.engine.spectrum import COLOR_SQRT_NORMALIZED
from vissearch.errors import UserError
from vissearch.imageio import Preprocess, read_png
from vissearch.settings.config import RenderSettings


class Param(Protocol):
    """How a variable becomes images.

    ``in_place``: whether pixel regularizers act on the variable (it holds the pixels).
    """

    in_place: bool

    def start(self, rows: list[Row], side: int, pre: Preprocess) -> np.ndarray:
        """The initial variable, one row per image."""

    def images(self, x: tf.Tensor, hp: dict[str, tf.Tensor], pre: Preprocess) -> tf.Tensor:
        """Model-input images ``[B, H, W, 3]`` of the variable ``x``."""

    def resized(self, x: tf.Tensor, side: int) -> tf.Tensor:
        """The variable for images of ``side`` pixels (progressive upscaling)."""

    def stage(self, rows: list[Row], side: int) -> dict[str, np.ndarray]:
        """Per-image arrays the images need at this side (none for pixels)."""


def _uniform(s: RenderSettings, rng, shape, center) -> np.ndarray:  # the Keras example: 128 +- 10
    return 128.0 + rng.uniform(-s.init_scale, s.init_scale, shape)


def _gaussian(s: RenderSettings, rng, shape, center) -> np.ndarray:  # the blog: normal(0, 10)
    return center + rng.normal(0.0, s.init_scale, shape)


def _gray(s: RenderSettings, rng, shape, center) -> np.ndarray:
    return np.broadcast_to(center, shape)


def _image(s: RenderSettings, rng, shape, center) -> np.ndarray:
    try:
        img = read_png(s.init_image)
    except (OSError, ValueError) as err:
        raise UserError(f"render.init_image {s.init_image!r} cannot be read: {err}") from None
    resized = tf.image.resize(tf.constant(img, tf.float32)[None], shape[:2], method="bicubic")
    return resized[0].numpy()


INITS: dict[str, Callable] = {
    "uniform": _uniform, "gaussian": _gaussian, "gray": _gray, "image": _image,
}


class PixelParam:
    """The RGB pixel image is the variable; the model sees it preprocessed."""

    in_place = True

    def start(self, rows: list[Row], side: int, pre: Preprocess) -> np.ndarray:
        out = np.empty((len(rows), side, side, 3), np.float32)
        for i, r in enumerate(rows):
            rng = image_rng(r.settings.seed, r.position, START)
            out[i] = INITS[r.settings.init](r.settings, rng, (side, side, 3), pre.pixel_center)
        return out

    def images(self, x: tf.Tensor, hp: dict[str, tf.Tensor], pre: Preprocess) -> tf.Tensor:
        return pre.to_input(x)

    def resized(self, x: tf.Tensor, side: int) -> tf.Tensor:
        return tf.image.resize(x, [side, side], method="bicubic")

    def stage(self, rows: list[Row], side: int) -> dict[str, np.ndarray]:
        return {}


class FourierParam:
    """A spectrum scaled by 1/f^decay; colours decorrelated; sigmoid into 0..255."""

    in_place = False

    def start(self, rows: list[Row], side: int, pre: Preprocess) -> np.ndarray:
        shape = (3, side, side // 2 + 1, 2)
        return np.stack([image_rng(r.settings.seed, r.position, START).normal(0.0, 0.01, shape)
                         for r in rows]).astype(np.float32)

    def stage(self, rows: list[Row], side: int) -> dict[str, np.ndarray]:
        fy = np.fft.fftfreq(side)[:, None]
        fx = np.fft.rfftfreq(side)[None, :]
        freq = np.maximum(np.sqrt(fx**2 + fy**2), 1.0 / side)
        scale = [side / freq ** r.settings.fourier_decay for r in rows]
        return {"fourier_scale": np.stack(scale).astype(np.float32)}  # [B, H, W//2+1]

    def images(self, x: tf.Tensor, hp: dict[str, tf.Tensor], pre: Preprocess) -> tf.Tensor:
        side = tf.shape(x)[2]
        scale = hp["fourier_scale"][:, None]  # [B, 1, H, W']
        real, imag = tf.unstack(x, axis=-1)  # a slice's gradient would fill a whole zero tensor
        spectrum = tf.complex(real * scale, imag * scale)
        img = tf.signal.irfft2d(spectrum, fft_length=[side, side]) / 4.0
        img = tf.transpose(img, [0, 2, 3, 1])  # [B, H, W, 3]
        mixed = tf.tensordot(img, tf.constant(COLOR_SQRT_NORMALIZED.T), axes=1)
        # 1 or 0 per image: exactly ``mixed`` or ``img`` for finite values; a ``Select`` here
        # leaves XLA a dynamic batch it cannot carry through the FFT's gradient, and a
        # broadcast ``tf.where`` is slow on the CPU (see optimizers.where)
        mine = tf.cast(hp["decorrelate"], img.dtype)[:, None, None, None]
        img = mixed * mine + img * (1.0 - mine)
        return pre.to_input(tf.sigmoid(img) * 255.0)

    def resized(self, x: tf.Tensor, side: int) -> tf.Tensor:
        raise UserError("progressive upscaling works on the pixel parameterization only")


class MacoParam:
    """MaCo (Fel et al. 2023): a learned phase under a fixed magnitude spectrum
    (:mod:`vissearch.engine.spectrum`), standardized, colours decorrelated, sigmoid into 0..255.

    The variable is the phase ``[B, 3, H, W//2+1]``. As in the paper the phase and the image
    are standardized per image, so the magnitude fixes the image's spectrum up to ``contrast``,
    the image's standard deviation before the sigmoid. A standardized phase is mostly near 0
    (the mean of its cosine is e^-1/2), so at the image's origin every coefficient adds up: a
    spot tens of standard deviations bright at the corners (of the image and, wrapping, of
    the canvas), which the standardization pays for with the contrast of everything else.
    ``maco_phase_offset`` adds a fixed uniform random phase per coefficient and image.
    """

    in_place = False

    def start(self, rows: list[Row], side: int, pre: Preprocess) -> np.ndarray:
        shape = (3, side, side // 2 + 1)
        return np.stack([image_rng(r.settings.seed, r.position, START).normal(0.0, 1.0, shape)
                         for r in rows]).astype(np.float32)

    def stage(self, rows: list[Row], side: int) -> dict[str, np.ndarray]:
        mags = [spectrum.magnitude(side, r.settings.maco_spectrum, r.settings.maco_alpha,
                                   r.settings.maco_photo_side) for r in rows]
        shape = (3, side, side // 2 + 1)
        offsets = [image_rng(r.settings.seed, r.position, PHASE).uniform(0, 2 * np.pi, shape)
                   if r.settings.maco_phase_offset else np.zeros(shape) for r in rows]
        return {"maco_magnitude": np.stack(mags),
                "maco_offset": np.stack(offsets).astype(np.float32)}

    def images(self, x: tf.Tensor, hp: dict[str, tf.Tensor], pre: Preprocess) -> tf.Tensor:
        side = tf.shape(x)[2]
        # a standardized phase has most of its values near 0, so every coefficient adds in
        # phase at the image's origin: with ``maco_phase_offset`` a fixed random phase spreads
        # them (an offset of 0 leaves the phase as it was, to the bit)
        phase = _standardized(x) + hp["maco_offset"]
        mag = hp["maco_magnitude"]
        spectrum_ = tf.complex(tf.cos(phase) * mag, tf.sin(phase) * mag)
        img = tf.transpose(tf.signal.irfft2d(spectrum_, fft_length=[side, side]), [0, 2, 3, 1])
        img = _standardized(img) * hp["contrast"][:, None, None, None]
        mixed = tf.tensordot(img, tf.constant(COLOR_SQRT_NORMALIZED.T), axes=1)
        img = optimizers.where(hp["decorrelate"], mixed, img)
        return pre.to_input(tf.sigmoid(img) * 255.0)

    def resized(self, x: tf.Tensor, side: int) -> tf.Tensor:
        raise UserError("progressive upscaling works on the pixel parameterization only")


def _standardized(x: tf.Tensor) -> tf.Tensor:
    """Each image (the first axis) less its mean, over its standard deviation."""
    axes = list(range(1, len(x.shape)))
    mean, var = tf.nn.moments(x, axes=axes, keepdims=True)
    return (x - mean) / (tf.sqrt(var) + 1e-5)


PARAMS: dict[str, Param] = {"pixel": PixelParam(), "fourier": FourierParam(),
                            "maco": MacoParam()}
