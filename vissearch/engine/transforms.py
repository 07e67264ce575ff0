"""Image operations that run inside the compiled step: ``(images, per-image values) => images``.

All take and return ``[B, H, W, C]`` float tensors and act on each image and channel on its own,
so an image's result never depends on the other images of its batch. Per-image amounts (a blur
kernel, a percentile, a jitter) are tensors with one row per image; a plain number stands for the
same value everywhere. Blur and median match ``scipy.ndimage.gaussian_filter`` /
``median_filter`` with their default ``mode='reflect'`` (TensorFlow's ``SYMMETRIC`` padding)
over the two spatial axes.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

BLUR_RADIUS = 12  # every blur kernel has 2 * 12 + 1 taps (sigma up to 3 keeps scipy's radius)


def gaussian_kernel(sigma: float, truncate: float = 4.0, radius: int | None = None) -> np.ndarray:
    """scipy's 1-D gaussian weights, radius ``int(truncate * sigma + 0.5)``, summing to 1.

    With ``radius`` the kernel is zero-padded (or, for a wider gaussian, cut and renormalized)
    to ``2 * radius + 1`` taps, so kernels of different sigmas stack into one tensor.
    """
    own = int(truncate * sigma + 0.5)
    r = own if radius is None else min(own, radius)
    x = np.arange(-r, r + 1, dtype=np.float64)
    phi = np.exp(-0.5 * x**2 / sigma**2)
    k = phi / phi.sum()
    if radius is not None:
        k = np.pad(k, radius - r)
    return k


def blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """Separable gaussian blur over height and width, one sigma for every image."""
    k = gaussian_kernel(sigma)
    kernels = tf.tile(tf.constant(k[None], images.dtype), [tf.shape(images)[0], 1])
    return blur_each(images, kernels)


def blur_each(images: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """Separable blur with image ``b``'s own 1-D kernel ``kernels[b]`` (odd length, radius at
    most the image side less one, as reflection padding needs)."""
    r = kernels.shape[1] // 2
    b, h, w = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    c = images.shape[-1]
    x = tf.pad(images, [[0, 0], [r, r], [r, r], [0, 0]], mode="SYMMETRIC")
    # fold the batch into channels: one depthwise convolution, each channel its own kernel
    x = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h + 2 * r, w + 2 * r, -1])
    taps = tf.reshape(tf.repeat(kernels, c, axis=0), [-1, 2 * r + 1])  # [B*C, K]
    kh = tf.transpose(taps)[:, None, :, None]  # [K, 1, B*C, 1]
    kw = tf.transpose(taps)[None, :, :, None]  # [1, K, B*C, 1]
    x = tf.nn.depthwise_conv2d(x, kh, [1, 1, 1, 1], "VALID")
    x = tf.nn.depthwise_conv2d(x, kw, [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(x, [h, w, b, c]), [2, 0, 1, 3])


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


def percentile(values: tf.Tensor, pct) -> tf.Tensor:
    """Per-image percentile of ``values [B, N]`` with NumPy's default linear interpolation;
    ``pct`` is one number or one per image."""
    n = tf.shape(values)[1]
    ordered = tf.sort(values, axis=1)
    pos = tf.cast(pct, values.dtype) / 100.0 * tf.cast(n - 1, values.dtype)
    pos = tf.broadcast_to(pos, tf.shape(values)[:1])
    lo = tf.cast(tf.floor(pos), tf.int32)
    hi = tf.minimum(lo + 1, n - 1)
    frac = pos - tf.cast(lo, values.dtype)
    low = tf.gather(ordered, lo, axis=1, batch_dims=1)
    high = tf.gather(ordered, hi, axis=1, batch_dims=1)
    return low + frac * (high - low)


def zero_below(images: tf.Tensor, score: tf.Tensor, pct, center: tf.Tensor) -> tf.Tensor:
    """Set pixels whose ``score [B,H,W]`` is below the per-image percentile to ``center``.

    Yosinski et al. 2015: with ``score`` the pixel norm this removes faint pixels; with the
    pixel's contribution ``|sum_c x * grad|`` it removes pixels that do not drive the target.
    """
    flat = tf.reshape(score, [tf.shape(score)[0], -1])
    thr = percentile(flat, pct)
    keep = score >= thr[:, None, None]
    return tf.where(keep[..., None], images, center)


def random_affine(images: tf.Tensor, uniforms: tf.Tensor, jitter, scale, rotate,
                  portable: bool = False) -> tf.Tensor:
    """A random shift, scale and rotation about the centre per image (transformation
    robustness), drawn from ``uniforms [B, 4]`` in [0, 1): image ``b`` moves by up to
    ``jitter[b]`` pixels, scales within ``1 +- scale[b]`` and turns within ``+- rotate[b]``
    degrees. Reflect padding fills the border; the op is differentiable. ``portable`` samples
    with plain gathers (:func:`sample_bilinear`), which XLA compiles; TensorFlow's projective
    transform has no XLA kernel.
    """
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)

    def spread(amount, u):  # uniform in [-amount, amount)
        return tf.cast(amount, tf.float32) * (2.0 * u - 1.0)

    s = 1.0 + spread(scale, uniforms[:, 0])
    theta = spread(rotate, uniforms[:, 1]) * (math.pi / 180.0)
    tx, ty = spread(jitter, uniforms[:, 2]), spread(jitter, uniforms[:, 3])
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a0, a1 = tf.cos(theta) / s, -tf.sin(theta) / s
    b0, b1 = tf.sin(theta) / s, tf.cos(theta) / s
    a2 = cx - a0 * cx - a1 * cy - tx
    b2 = cy - b0 * cx - b1 * cy - ty
    if portable:  # under XLA: the same map sampled by plain gathers
        return _portable_affine(images, (a0, a1, a2, b0, b1, b2))
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _affine_sample(images: tf.Tensor, m: tuple) -> tf.Tensor:
    """Output pixel (x, y) of each image takes the input at ``(a0 x + a1 y + a2, b0 x + b1 y +
    b2)``, as TensorFlow's projective transform maps it."""
    a0, a1, a2, b0, b1, b2 = (v[:, None, None] for v in m)
    h, w = tf.shape(images)[1], tf.shape(images)[2]
    y, x = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                       indexing="ij")
    return sample_bilinear(images, b0 * x + b1 * y + b2, a0 * x + a1 * y + a2)


def _portable_affine(images: tf.Tensor, m: tuple) -> tf.Tensor:
    """:func:`_affine_sample` with the gradient TensorFlow gives its projective transform: the
    incoming gradient warped by the inverse map (so that jit and non-jit steps agree)."""
    a0, a1, a2, b0, b1, b2 = m
    det = a0 * b1 - a1 * b0
    i0, i1, j0, j1 = b1 / det, -a1 / det, -b0 / det, a0 / det
    inverse = (i0, i1, -(i0 * a2 + i1 * b2), j0, j1, -(j0 * a2 + j1 * b2))

    @tf.custom_gradient
    def warp(x: tf.Tensor):
        return _affine_sample(x, m), lambda dy: _affine_sample(dy, inverse)

    return warp(images)


def _reflected(index: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """Integer indices reflected into ``0..n-1`` (``d c b a | a b c d | d c b a``)."""
    r = tf.math.floormod(index, 2 * n)
    return tf.where(r >= n, 2 * n - 1 - r, r)


def sample_bilinear(images: tf.Tensor, ys: tf.Tensor, xs: tf.Tensor) -> tf.Tensor:
    """``images [B, H, W, C]`` sampled at source rows ``ys`` and columns ``xs`` (``[B, H', W']``,
    pixel units) by bilinear interpolation, reflecting past the border: plain gathers, so XLA
    compiles it and the gradient reaches the four neighbours of each sample."""
    h, w = tf.shape(images)[1], tf.shape(images)[2]
    y0, x0 = tf.floor(ys), tf.floor(xs)
    wy, wx = (ys - y0)[..., None], (xs - x0)[..., None]
    y0, x0 = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)

    def at(yi: tf.Tensor, xi: tf.Tensor) -> tf.Tensor:
        idx = tf.stack([_reflected(yi, h), _reflected(xi, w)], axis=-1)
        return tf.gather_nd(images, idx, batch_dims=1)

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def crop_and_resize(images: tf.Tensor, boxes: tf.Tensor, per_image: int,
                    side: int) -> tf.Tensor:
    """``[B * per_image, side, side, C]``: ``tf.image.crop_and_resize`` of the boxes (image by
    image, ``per_image`` each; bilinear, zeros beyond the image) with a gradient that is the
    same on every run. TensorFlow's CPU gradient adds the boxes of one image into its gradient
    from several threads at once, so on more than one core the sums come in another order, or
    lose an addition, from run to run. Here TensorFlow's gradient kernel gives every box an
    image of its own (no two threads write one pixel), and each image's boxes are then added
    in order. The cost: ``B * per_image`` image-sized gradients in memory for a moment."""
    which = tf.repeat(tf.range(tf.shape(images)[0]), per_image)

    @tf.custom_gradient
    def crop(images: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
        out = tf.image.crop_and_resize(images, boxes, which, [side, side])

        def grad(g: tf.Tensor):
            shape = tf.shape(images)
            each = tf.raw_ops.CropAndResizeGradImage(
                grads=g, boxes=boxes, box_ind=tf.range(tf.shape(boxes)[0]),
                image_size=tf.concat([tf.shape(boxes)[:1], shape[1:]], 0), T=images.dtype)
            each = tf.reshape(each, tf.concat([shape[:1], [per_image], shape[1:]], 0))
            total = each[:, 0]
            for k in range(1, per_image):
                total += each[:, k]
            return total, None

        return out, grad

    return crop(images, boxes)
