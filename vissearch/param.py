"""Image parameterizations: ``(settings) => variable => images [B, H, W, 3]`` in model-input space.

``pixel`` optimizes the RGB pixel image itself (0..255 scale), as the Keras example and the blog
do with VGG16, so their learning rates keep their meaning on every model whatever its input
scaling, and in-place regularizers (blur, median, decay, clipping) act on it. ``fourier`` optimizes a scaled spectrum whose colours are decorrelated and squashed into the
valid range by a sigmoid (Olah et al. 2017, "Feature Visualization").
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vissearch.config import RenderSettings
from vissearch.errors import UserError
from vissearch.imageio import Preprocess, read_png

# Square root of the ImageNet colour covariance (RGB), as in Olah et al.: its columns decorrelate
# the three channels so that each spectrum coefficient moves a natural colour direction.
COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
COLOR_SQRT_NORMALIZED = COLOR_SQRT / np.max(np.linalg.norm(COLOR_SQRT, axis=0))


def initial_pixels(
    s: RenderSettings, batch: int, size: int, pre: Preprocess, gen: tf.random.Generator
) -> tf.Tensor:
    """Starting RGB pixels ``[B, size, size, 3]`` (0..255 scale, not clipped)."""
    shape = [batch, size, size, 3]
    center = tf.constant(pre.pixel_center, tf.float32)
    if s.init == "uniform":  # the Keras example: gray 128 +- 10
        return 128.0 + gen.uniform(shape, -s.init_scale, s.init_scale)
    if s.init == "gaussian":  # the blog: normal(0, 10) around the mean pixel
        return center + gen.normal(shape, stddev=s.init_scale)
    if s.init == "gray":
        return tf.broadcast_to(center, shape)
    try:
        img = read_png(s.init_image)
    except (OSError, ValueError) as err:
        raise UserError(f"render.init_image {s.init_image!r} cannot be read: {err}") from None
    img = tf.image.resize(tf.constant(img, tf.float32)[None], [size, size], method="bicubic")
    return tf.tile(img, [batch, 1, 1, 1])


class PixelParam:
    """The RGB pixel image is the variable; the model sees it preprocessed."""

    def __init__(self, s: RenderSettings, batch: int, size: int, pre: Preprocess, gen):
        self.pre = pre
        self.var = tf.Variable(initial_pixels(s, batch, size, pre, gen))

    def images(self, value: tf.Tensor | None = None) -> tf.Tensor:
        return self.pre.to_input(self.var if value is None else value)

    def resized(self, size: int) -> None:
        """Enlarge the image (progressive upscaling); the variable is replaced."""
        x = tf.image.resize(self.var, [size, size], method="bicubic")
        self.var = tf.Variable(x)


class FourierParam:
    """A spectrum scaled by 1/f^decay; colours decorrelated; sigmoid into 0..255."""

    def __init__(self, s: RenderSettings, batch: int, size: int, pre: Preprocess, gen):
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.rfftfreq(size)[None, :]
        freq = np.sqrt(fx**2 + fy**2)
        scale = 1.0 / np.maximum(freq, 1.0 / size) ** s.fourier_decay
        self.scale = tf.constant(scale * size, tf.float32)  # [H, W//2+1]
        self.size, self.pre, self.decorrelate = size, pre, s.decorrelate
        self.var = tf.Variable(gen.normal([batch, 3, size, size // 2 + 1, 2], stddev=0.01))

    def images(self, value: tf.Tensor | None = None) -> tf.Tensor:
        v = self.var if value is None else value
        spectrum = tf.complex(v[..., 0] * self.scale, v[..., 1] * self.scale)
        img = tf.signal.irfft2d(spectrum, fft_length=[self.size, self.size]) / 4.0
        img = tf.transpose(img, [0, 2, 3, 1])  # [B, H, W, 3]
        if self.decorrelate:
            img = tf.tensordot(img, tf.constant(COLOR_SQRT_NORMALIZED.T), axes=1)
        return self.pre.to_input(tf.sigmoid(img) * 255.0)

    def resized(self, size: int) -> None:
        raise ValueError("progressive upscaling works on the pixel parameterization only")


def make(s: RenderSettings, batch: int, size: int, pre: Preprocess, gen) -> PixelParam:
    cls = FourierParam if s.param == "fourier" else PixelParam
    return cls(s, batch, size, pre, gen)
