"""The record of a loaded model: the network, its input convention and what it can name.

A leaf module: :mod:`vissearch.models.resolve` and :mod:`vissearch.models.zoo` both build it and
neither imports the other for it. No TensorFlow at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vissearch.imageio import Preprocess


@dataclass
class LoadedModel:
    """A Keras model, its input convention, and where it came from.

    Attributes:
        model: the ``keras.Model``.
        preprocess: how RGB pixels 0..255 become its input.
        label: a readable name for messages.
        fixed_size: the one input side the model accepts, or None for any size.
        native_size: the side it was trained at (a judge resizes images to it), or None.
        class_names: the names of its classes in order, or None when they are unknown.
    """

    model: Any
    preprocess: Preprocess
    label: str
    fixed_size: int | None = None
    native_size: int | None = None
    class_names: tuple[str, ...] | None = None
