"""Images without TensorFlow: preprocessing conventions, deprocessing, grids and PNG files.

Shapes: a pixel image is float ``[H, W, 3]`` RGB in 0..255; a model-input image is what the
network eats (for VGG16: BGR minus the ImageNet mean). :class:`Preprocess` maps between the two
with plain arithmetic, so it works on NumPy arrays and TensorFlow tensors alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vissearch.files import atomic_write

IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """``input = (pixel[..., order] - mean) / std`` with per-channel mean and std.

    ``mean`` and ``std`` are given in RGB order; ``bgr`` flips the channels on the way in.
    """

    mode: str
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    bgr: bool = False

    MEANINGS = {  # what each named mode makes of pixels x in 0..255 (python -m vissearch layers)
        "none": "x as it is", "unit": "x / 255", "tf": "x / 127.5 - 1",
        "torch": "x / 255, then ImageNet mean and std", "caffe": "BGR, x - ImageNet mean",
        "lite": "(x - 127) / 128"}

    @classmethod
    def named(cls, mode: str) -> Preprocess:
        if mode == "caffe":
            return cls("caffe", IMAGENET_MEAN_RGB, (1.0, 1.0, 1.0), bgr=True)
        if mode == "tf":
            return cls("tf", (127.5,) * 3, (127.5,) * 3)
        if mode == "torch":
            mean, std = (tuple(255 * v for v in vals) for vals in (TORCH_MEAN, TORCH_STD))
            return cls("torch", mean, std)
        if mode == "unit":
            return cls("unit", (0.0,) * 3, (255.0,) * 3)
        if mode == "lite":  # EfficientNet-Lite's TF-Lite convention
            return cls("lite", (127.0,) * 3, (128.0,) * 3)
        if mode == "none":
            return cls("none")
        raise ValueError(f"unknown preprocessing {mode!r}: caffe, tf, torch, unit, lite or none")

    def _in_order(self, values: tuple[float, ...]) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float32)
        return arr[::-1].copy() if self.bgr else arr

    @property
    def input_mean(self) -> np.ndarray:
        return self._in_order(self.mean)

    @property
    def input_std(self) -> np.ndarray:
        return self._in_order(self.std)

    def to_input(self, pixels):
        """RGB pixels (0..255) -> model input. NumPy or TensorFlow."""
        x = pixels[..., ::-1] if self.bgr else pixels
        return (x - self.input_mean) / self.input_std

    def to_pixels(self, x):
        """Model input -> RGB pixels (unclipped floats). The exact inverse of :meth:`to_input`."""
        p = x * self.input_std + self.input_mean
        return p[..., ::-1] if self.bgr else p

    @property
    def input_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (low, high) model-input values of the valid pixels 0 and 255."""
        lo = (0.0 - self.input_mean) / self.input_std
        hi = (255.0 - self.input_mean) / self.input_std
        return lo.astype(np.float32), hi.astype(np.float32)

    @property
    def pixel_center(self) -> np.ndarray:
        """RGB pixel of the neutral image that decay pulls toward (the mean pixel)."""
        center_rgb = IMAGENET_MEAN_RGB if self.mode == "caffe" else (127.5,) * 3
        return np.asarray(center_rgb, dtype=np.float32)


def to_uint8(x: np.ndarray, pre: Preprocess, mode: str = "exact", std: float = 0.1) -> np.ndarray:
    """Model-input image(s) ``[..., H, W, 3]`` -> uint8 RGB.

    ``exact`` inverts the preprocessing and clips to 0..255. ``keras`` is the Keras example's
    normalization: centre each image, scale it to ``std`` (0.1 in the original, 0.25 in the
    upscaling version), shift to 0.5 and clip, which shows faint patterns at any activation scale.
    """
    x = np.asarray(x, dtype=np.float64)
    if mode == "exact":
        pixels = pre.to_pixels(x)
    elif mode == "keras":
        axes = (-3, -2, -1)
        centred = x - x.mean(axis=axes, keepdims=True)
        normed = centred / (centred.std(axis=axes, keepdims=True) + 1e-7) * std + 0.5
        pixels = np.clip(normed, 0.0, 1.0) * 255.0
        pixels = pixels[..., ::-1] if pre.bgr else pixels
    else:
        raise ValueError(f"unknown deprocess mode {mode!r}: exact or keras")
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def grid(images: list[np.ndarray], n: int | None = None, margin: int = 5,
         captions: list[str] | None = None) -> np.ndarray:
    """Tile uint8 images row by row into a grid with black margins.

    With ``n`` the grid is n x n (the Keras example's 8 x 8 of the best 64): extra images are
    dropped and empty cells stay black. Without it there are ``ceil(sqrt(count))`` columns and
    as many rows as needed. Images must share one shape. ``captions`` (one per image) are written
    in a strip under each cell, the ``margin`` still between cells.
    """
    if not images:
        raise ValueError("grid of no images")
    cols = n or int(np.ceil(np.sqrt(len(images))))
    rows = n or int(np.ceil(len(images) / cols))
    h, w, c = images[0].shape
    strip = caption_height(w) if captions else 0
    cell = h + strip
    out = np.zeros((rows * cell + (rows - 1) * margin, cols * w + (cols - 1) * margin, c),
                   dtype=np.uint8)
    for k, img in enumerate(images[: rows * cols]):
        i, j = divmod(k, cols)
        y, x = i * (cell + margin), j * (w + margin)
        out[y : y + h, x : x + w] = img
        if captions:
            out[y + h : y + cell, x : x + w] = caption_strip(captions[k], w, strip, c)
    return out


def caption_height(width: int) -> int:
    """Pixels of the caption strip under a cell ``width`` wide: 14 from 48 px up, less below."""
    return 14 if width >= 48 else 10


def caption_strip(text: str, width: int, height: int, channels: int = 3) -> np.ndarray:
    """White text centred on black, shortened with an ellipsis to fit ``width``."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=height - 3)
    shown = text
    while shown and font.getlength(shown) > width - 2:
        shown = shown[:-2] + "\u2026" if len(shown) > 2 else ""
    strip = Image.new("L", (width, height))
    draw = ImageDraw.Draw(strip)
    x = max(0, (width - font.getlength(shown)) / 2)
    draw.text((x, height / 2), shown, font=font, fill=255, anchor="lm")
    gray = np.asarray(strip)
    return np.repeat(gray[..., None], channels, axis=-1)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 image as PNG atomically (:func:`vissearch.files.atomic_write`)."""
    pil = Image.fromarray(np.asarray(image, dtype=np.uint8))
    return atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))


def read_png(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB ``[H, W, 3]``."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
