"""Cells for the bench's captioned grids: an image (a file or pixels) as a square of ``side`` px.

``bench/recipe_grid.py``, ``bench/comparison_sheet.py`` and ``bench/peers.py`` tile them with
:func:`vissearch.imageio.grid`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def cell(image: Path | np.ndarray, side: int) -> np.ndarray:
    """``image`` (a PNG's path, or pixels of any float or integer type in 0..255) as RGB uint8,
    resized to ``side`` x ``side`` with Lanczos."""
    if isinstance(image, Path):
        img = Image.open(image).convert("RGB")
    else:
        img = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    return np.asarray(img.resize((side, side), Image.LANCZOS))
