"""The engine's crop_and_resize: TensorFlow's crops, and a gradient that is the same on every
run (TensorFlow's own CPU gradient adds one image's boxes from several threads at once)."""

import numpy as np
import tensorflow as tf

from vissearch.engine import transforms
from vissearch.engine.render import render
from vissearch.settings.config import RenderSettings, TargetSpec


def _case(boxes_per_image: int, side: int = 40, out: int = 12, seed: int = 0):
    """Two images, boxes of every size whose centres scatter past the border (the first two
    surely: over the top left and the bottom right corner), and gradients for the crops."""
    rng = np.random.default_rng(seed)
    n = 2 * boxes_per_image
    images = tf.constant(rng.standard_normal((2, side, side, 3)), tf.float32)
    share = rng.uniform(0.1, 0.9, n)
    y0, x0 = (rng.normal(0.5, 0.3, n) - share / 2 for _ in range(2))
    boxes = np.stack([y0, x0, y0 + share, x0 + share], 1)
    boxes[:2] = [[-0.3, -0.2, 0.5, 0.6], [0.6, 0.5, 1.3, 1.2]]  # past each border
    boxes = tf.constant(boxes, tf.float32)
    g = tf.constant(rng.standard_normal((n, out, out, 3)), tf.float32)
    return images, boxes, boxes_per_image, g, out


def _through(crop, images, boxes, per_image, g, out):
    with tf.GradientTape() as tape:
        tape.watch(images)
        crops = crop(images, boxes, per_image, out)
    return crops.numpy(), tape.gradient(crops, images, output_gradients=g).numpy()


def _tensorflows(images, boxes, per_image, out):
    which = np.repeat(np.arange(images.shape[0]), per_image)
    return tf.image.crop_and_resize(images, boxes, which, [out, out])


def _by_hand(images, boxes, per_image, g, out) -> np.ndarray:
    """Each output gradient to the four pixels its sample reads, bilinear weights, nothing
    for samples outside the image (float64 loops)."""
    _, h, w, _ = images.shape
    grad, gs = np.zeros(images.shape), g.numpy().astype(np.float64)
    for k, (y1, x1, y2, x2) in enumerate(boxes.numpy().astype(np.float64)):
        for i in range(out):
            y = y1 * (h - 1) + i * (y2 - y1) * (h - 1) / (out - 1)
            if not 0 <= y <= h - 1:
                continue
            for j in range(out):
                x = x1 * (w - 1) + j * (x2 - x1) * (w - 1) / (out - 1)
                if not 0 <= x <= w - 1:
                    continue
                t, lft = int(np.floor(y)), int(np.floor(x))
                b, r = int(np.ceil(y)), int(np.ceil(x))
                ly, lx = y - t, x - lft
                gk = gs[k, i, j]
                n = k // per_image
                grad[n, t, lft] += (1 - ly) * (1 - lx) * gk
                grad[n, t, r] += (1 - ly) * lx * gk
                grad[n, b, lft] += ly * (1 - lx) * gk
                grad[n, b, r] += ly * lx * gk
    return grad


def test_the_crops_are_tensorflows_and_the_gradient_a_hand_computation():
    case = _case(boxes_per_image=6)
    ours, grad = _through(transforms.crop_and_resize, *case)
    theirs, _ = _through(_tensorflows, *case)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(grad, _by_hand(*case), atol=1e-4)


def test_with_one_box_an_image_the_gradient_is_tensorflows():
    """No two boxes share an image, so TensorFlow's threads cannot collide."""
    case = _case(boxes_per_image=1, seed=3)
    _, ours = _through(transforms.crop_and_resize, *case)
    _, theirs = _through(_tensorflows, *case)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_many_boxes_on_one_image_give_the_same_gradient_every_time():
    case = _case(boxes_per_image=48, side=96, out=32, seed=1)
    first = _through(transforms.crop_and_resize, *case)[1]
    for _ in range(3):
        np.testing.assert_array_equal(_through(transforms.crop_and_resize, *case)[1], first)


def test_a_maco_render_with_many_crops_repeats_bit_for_bit(tiny):
    settings = RenderSettings(size=24, steps=16, param="maco", optimizer="adam", lr=0.2,
                              canvas=48, crops=16, crop_min=0.3, crop_max=0.9,
                              crop_center_std=0.3, seed=4)
    target = TargetSpec(kind="class", indices=[0, 1])
    first, second = (render(tiny, target, settings) for _ in range(2))
    np.testing.assert_array_equal(first.inputs, second.inputs)
    np.testing.assert_array_equal(first.curves, second.curves)
