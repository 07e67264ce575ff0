"""The networks behind the model-based scores: ``Evaluator(model, target, judge) => (render
result) => scores``.

:class:`Evaluator` implements :class:`vissearch.scoring.scores.Models`: it loads what those scores
need once per study and answers their questions about a render with NumPy arrays:

- the optimized model's softmax (``probability``; high values on unreadable images are the
  "fooling" effect);
- the judge's softmax on each whole image and on random crops of it, resized to the judge's own
  resolution (``transfer``, ``transfer_whole``, ``transfer_crops``, ``transfer_top5``,
  ``transfer_prob``): a second, independent model that was never optimized against tells
  whether the image carries the class (Fel et al. 2023), seen whole as a person sees it and in
  parts;
- the target's activation under held-out random shift and scale (``robustness``);
- the best activation any real example reaches (``activation_norm``, zoo/shapes only, whose
  data the project generates).

The scores themselves are computed in :mod:`vissearch.scoring.scores`.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from vissearch.engine import candidates, objectives, transforms
from vissearch.engine.render import RenderResult
from vissearch.models import zoo
from vissearch.models.loaded import LoadedModel
from vissearch.scoring import scores
from vissearch.settings.config import TargetSpec

CROPS = 8  # random crops per image for transfer, beside the whole image
CROP = 0.85  # crop side as a share of the image side
JUDGE_BATCH = 32  # judge views per forward pass (bounds its memory on large populations)
JITTERS = 4  # held-out transforms per image for robustness


class Evaluator:
    """Loads what the model-based scores need once per study, then scores each render."""

    def __init__(self, loaded: LoadedModel, target: TargetSpec, judge: str | None,
                 seed: int = 12345):
        self.loaded, self.target, self.seed = loaded, target, seed
        self.objective = tf.function(objectives.build(loaded, target), reduce_retracing=True)
        self.is_class = target.kind == "class"
        self.scores_model = objectives.class_scores(loaded.model) if self.is_class else None
        self.judge = self.judge_scores = None
        if judge and self.is_class:
            self.judge = candidates.judge_model(judge)  # one copy per process, shared with
            # the renders that pick among candidates by the same judge
            self.judge_scores = objectives.class_scores(self.judge.model)
        self._best = _best_real(loaded, target)
        self._memo: tuple[RenderResult, np.ndarray] | None = None

    def __call__(self, result: RenderResult) -> dict[str, float]:
        """Every model-based score of ``result``."""
        return scores.compute(result, self, pure=False)

    def class_probs(self, result: RenderResult) -> np.ndarray | None:
        if not self.is_class:
            return None
        logits = self.scores_model(tf.constant(result.inputs, tf.float32), training=False)
        return tf.nn.softmax(logits).numpy()

    def judge_probs(self, result: RenderResult) -> np.ndarray | None:
        if self.judge is None:
            return None
        if self._memo is not None and self._memo[0] is result:
            return self._memo[1]  # transfer, top-5 and probability share one judge pass
        pixels = np.clip(result.pixels(), 0, 255).astype(np.float32)
        side = self.judge.native_size or pixels.shape[1]
        whole = tf.image.resize(pixels, [side, side], method="bilinear", antialias=True)
        crops = random_crops(pixels, CROPS, CROP, self.seed, side)  # [B * CROPS, side, side, 3]
        views = np.concatenate([whole.numpy()[:, None], crops.reshape(len(pixels), CROPS,
                                                                      side, side, 3)], axis=1)
        views = views.reshape(-1, side, side, 3)  # image by image: whole, then its crops
        inputs = self.judge.preprocess.to_input(views)
        logits = np.concatenate([self.judge_scores(inputs[i:i + JUDGE_BATCH], training=False)
                                 for i in range(0, len(inputs), JUDGE_BATCH)])
        probs = tf.nn.softmax(logits).numpy().reshape(len(pixels), 1 + CROPS, -1)
        self._memo = (result, probs)
        return probs

    def moved_activations(self, result: RenderResult) -> np.ndarray:
        images = tf.constant(result.inputs, tf.float32)
        idx = tf.constant(result.indices, tf.int32)
        rng = np.random.default_rng(self.seed)
        moved = []
        for _ in range(JITTERS):
            u = tf.constant(rng.random((len(result.indices), 4)), tf.float32)
            moved.append(self.objective(transforms.random_affine(images, u, 4, 0.1, 0.0), idx))
        return tf.reduce_mean(tf.stack(moved), axis=0).numpy()

    def best_real(self, result: RenderResult) -> np.ndarray | None:
        if self._best is None:
            return None
        return np.array([self._best[i] for i in result.indices])


def _best_real(loaded: LoadedModel, target: TargetSpec) -> dict[int, float] | None:
    """Per target, the highest activation over real images (zoo/shapes models only)."""
    entry = zoo.ZOO.get(loaded.label)
    if entry is None or entry.classes != "shapes":
        return None
    x = tf.constant(loaded.preprocess.to_input(_real_images()))
    best = tf.reduce_max(objectives.every_target(loaded, target)(x), axis=0).numpy()
    return dict(zip(target.indices, map(float, best), strict=True))


@functools.cache
def _real_images() -> np.ndarray:
    """256 freshly generated zoo/shapes images (pixels), made once per process."""
    from vissearch.models.zoo import data

    return data.generate(256, seed=777)[0].astype(np.float32)


def random_crops(pixels: np.ndarray, count: int, share: float, seed: int,
                 side_out: int | None = None) -> np.ndarray:
    """``count`` random square crops of ``share`` of the side per image, resized to
    ``side_out`` (default: the image's own size)."""
    rng = np.random.default_rng(seed)
    b, h, w, _ = pixels.shape
    side = max(2, int(round(min(h, w) * share)))
    boxes, which = [], []
    for i in range(b):
        for _ in range(count):
            y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            boxes.append([y0 / h, x0 / w, (y0 + side) / h, (x0 + side) / w])
            which.append(i)
    out = [side_out, side_out] if side_out else [h, w]
    crops = tf.image.crop_and_resize(pixels, np.array(boxes, np.float32),
                                     np.array(which, np.int32), out)
    return crops.numpy()
