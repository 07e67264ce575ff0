"""The better of several seeds: render a target ``candidates`` times, keep the image a judge
prefers.

Images of one class rendered from different seeds are named by readers at very different
rates (docs/readers.md, tuning round 11: the better of two seeds' images was named 0.89 of the
time, a random one of them 0.78), and a score of the finished image orders two such images as
readers do about two times in three. So a render with ``candidates: N`` renders every target
with the seeds ``seed, seed + 1, ..., seed + N - 1`` (each bit for bit a render with that
seed alone) and keeps, per target, the candidate that scores highest:

- a class target: the mean probability of the class over the 9 half-side tiles of the finished
  image (a 3 x 3 grid at quarter-side strides), under ``judge`` (another classifier with the
  same classes, e.g. ``zoo/efficientnet-lite2`` for a Lite0 render) or, without one, under the
  rendering model itself: an object the whole image shows in several places scores higher than
  one the network finds in one corner;
- any other target: its objective on the finished image (the render's ``activations``).

Ties keep the earlier candidate; ``candidates: 1`` is a plain render. On draw 12 (20 fresh
classes) the judge's picks were not named more than seed 7 alone; the recipes ship without it.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from vissearch.errors import UserError
from vissearch.models.loaded import LoadedModel
from vissearch.settings.config import ModelSpec, RenderSettings

TILE_BATCH = 16  # images (tiles) the judge sees at once


def seeds_of(settings: RenderSettings) -> list[RenderSettings]:
    """The settings of each candidate: the same, with seeds ``seed + k`` and one candidate."""
    return [settings.model_copy(update={"seed": settings.seed + k, "candidates": 1})
            for k in range(settings.candidates)]


@functools.lru_cache(maxsize=2)
def judge_model(name: str) -> LoadedModel:
    """The judge named in ``render.judge`` (or the study's, for its scores), loaded once per
    process."""
    from vissearch.models import resolve

    return resolve.load(ModelSpec(name=name))


def tiles(image: np.ndarray) -> list[np.ndarray]:
    """The 9 half-side tiles of ``image`` [H, W, 3], at quarter-side strides."""
    h, w = image.shape[:2]
    return [image[y:y + h // 2, x:x + w // 2]
            for y in (0, h // 4, h // 2) for x in (0, w // 4, w // 2)]


def class_probability(judge: LoadedModel, images: list[np.ndarray], classes) -> np.ndarray:
    """Softmax probability of ``classes[i]`` on ``images[i]`` (uint8 RGB) under ``judge``, each
    image resized to the side the judge takes or was trained at (260 px for Lite2), if any."""
    from vissearch.engine import objectives

    scores = objectives.class_scores(judge.model)
    n_classes = int(scores.output.shape[-1])
    if max(classes) >= n_classes:
        raise UserError(f"render.judge {judge.label} has {n_classes} classes; class "
                        f"{max(classes)} is not one of them (a judge needs the model's classes)")
    side = judge.fixed_size or judge.native_size  # None: the images go in as they are
    x = np.stack([np.asarray(Image.fromarray(img).resize((side, side), Image.BILINEAR))
                  if side else img for img in images]).astype(np.float32)
    logits = np.concatenate([np.asarray(scores(judge.preprocess.to_input(x[i:i + TILE_BATCH])))
                             for i in range(0, len(x), TILE_BATCH)]).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p[np.arange(len(x)), np.asarray(classes)]


def tile_probability(judge: LoadedModel, images: list[np.ndarray], classes: list[int]
                     ) -> np.ndarray:
    """Mean class probability (:func:`class_probability`) over the 9 tiles of each image."""
    parts = [t for img in images for t in tiles(img)]
    return class_probability(judge, parts, np.repeat(classes, 9)).reshape(len(images), 9).mean(1)


def pick(scores: np.ndarray) -> np.ndarray:
    """Per target, the candidate with the highest score (``scores`` [N, targets]); NaN loses,
    and a tie keeps the earlier candidate."""
    return np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=0)
