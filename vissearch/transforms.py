"""Image operations that run inside the compiled step: ``(settings) => (images) => images``.

All take and return ``[B, H, W, C]`` float tensors and act on each image and channel on its own.
Blur and median match ``scipy.ndimage.gaussian_filter`` / ``median_filter`` with their default
``mode='reflect'`` (TensorFlow's ``SYMMETRIC`` padding) over the two spatial axes.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy's 1-D gaussian weights: radius ``int(truncate * sigma + 0.5)``, summing to 1."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * x**2 / sigma**2)
    return phi / phi.sum()


def blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Separable gaussian blur over height and width."""
    k = gaussian_kernel(sigma)
    r = len(k) // 2
    channels = images.shape[-1]
    x = tf.pad(images, [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
    kern = tf.constant(k, dtype=images.dtype)
    kh = tf.tile(tf.reshape(kern, [-1, 1, 1, 1]), [1, 1, channels, 1])
    kw = tf.tile(tf.reshape(kern, [1, -1, 1, 1]), [1, 1, channels, 1])
    x = tf.nn.depthwise_conv2d(x, kh, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, kw, [1, 1, 1, 1], "VALID")


def median(images: tf.Tensor, size: int) -> tf.Tensor:
    """Median over a size x size window (odd size): exact, so equal to scipy's bit for bit."""
    r = size // 2
    b, h, w, c = (tf.shape(images)[i] for i in range(4))
    x = tf.pad(images, [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
    patches = tf.image.extract_patches(x, [1, size, size, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
    patches = tf.reshape(patches, [b, h, w, size * size, c])
    patches = tf.transpose(patches, [0, 1, 2, 4, 3])
    top = tf.math.top_k(patches, k=(size * size) // 2 + 1, sorted=True).values
    return top[..., -1]


def total_variation(images: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference between neighbours, per image: ``[B]``."""
    dh = tf.reduce_mean(tf.abs(images[:, 1:] - images[:, :-1]), axis=[1, 2, 3])
    dw = tf.reduce_mean(tf.abs(images[:, :, 1:] - images[:, :, :-1]), axis=[1, 2, 3])
    return dh + dw


def percentile(values: tf.Tensor, pct: float) -> tf.Tensor:
    """Per-image percentile of ``values [B, N]`` with NumPy's default linear interpolation."""
    n = values.shape[1]
    ordered = tf.sort(values, axis=1)
    pos = pct / 100.0 * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return ordered[:, lo] + frac * (ordered[:, hi] - ordered[:, lo])


def zero_below(images: tf.Tensor, score: tf.Tensor, pct: float, center: tf.Tensor) -> tf.Tensor:
    """Set pixels whose ``score [B,H,W]`` is below the per-image percentile to ``center``.

    Yosinski et al. 2015: with ``score`` the pixel norm this removes faint pixels; with the
    pixel's contribution ``|sum_c x * grad|`` it removes pixels that do not drive the target.
    """
    b = tf.shape(score)[0]
    flat = tf.reshape(score, [b, -1])
    flat.set_shape([None, score.shape[1] * score.shape[2]])
    thr = percentile(flat, pct)
    keep = score >= thr[:, None, None]
    return tf.where(keep[..., None], images, center)


def random_affine(
    images: tf.Tensor, gen: tf.random.Generator, jitter: int, scale: float, rotate: float
) -> tf.Tensor:
    """One random shift, scale and rotation about the centre per image (transformation robustness).

    Reflect padding fills the border; the op is differentiable, so the gradient flows back.
    """
    b = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
    s = gen.uniform([b], 1.0 - scale, 1.0 + scale) if scale else tf.ones([b])
    theta = gen.uniform([b], -rotate, rotate) * (math.pi / 180.0) if rotate else tf.zeros([b])
    shift = float(jitter)
    tx = gen.uniform([b], -shift, shift) if jitter else tf.zeros([b])
    ty = gen.uniform([b], -shift, shift) if jitter else tf.zeros([b])
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a0, a1 = tf.cos(theta) / s, -tf.sin(theta) / s
    b0, b1 = tf.sin(theta) / s, tf.cos(theta) / s
    a2 = cx - a0 * cx - a1 * cy - tx
    b2 = cy - b0 * cx - b1 * cy - ty
    zeros = tf.zeros([b])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
