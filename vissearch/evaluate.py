"""Scores that need a model: ``Evaluator(model, target, judge) => (render result) => scores``.

- ``probability``: the optimized model's softmax probability of the target class. High values
  on unreadable images are the "fooling" effect.
- ``activation_norm``: the final activation divided by the best activation any real example
  reaches (zoo models, whose data the project generates).
- ``transfer`` / ``transfer_top5`` / ``transfer_prob``: a second, independent model (the judge)
  classifies the images under small random crops, resized to the judge's own resolution; its
  top-1 and top-5 accuracy and mean target probability tell whether the image carries the class
  to a network that was never optimized against (Fel et al. 2023).
- ``robustness``: the target's activation under held-out random shift and scale, divided by its
  activation on the image as rendered.

Scores that do not apply (a filter target has no class probability) are NaN.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vissearch import models, objectives, transforms, zoo
from vissearch.config import ModelSpec, TargetSpec
from vissearch.render import RenderResult

CROPS = 4  # random crops per image for transfer
CROP = 0.85  # crop side as a share of the image side
JITTERS = 4  # held-out transforms per image for robustness


class Evaluator:
    """Loads what the model-based scores need once per study, then scores each render."""

    def __init__(self, loaded: models.LoadedModel, target: TargetSpec, judge: str | None,
                 seed: int = 12345):
        self.loaded, self.target, self.seed = loaded, target, seed
        self.objective = objectives.build(loaded, target)
        self.is_class = target.kind == "class"
        self.scores_model = objectives.class_scores(loaded.model) if self.is_class else None
        self.judge = self.judge_scores = None
        if judge and self.is_class:
            self.judge = models.load(ModelSpec(name=judge, weights="imagenet"))
            self.judge_scores = objectives.class_scores(self.judge.model)
        self.best_real = self._best_real()

    def __call__(self, result: RenderResult) -> dict[str, float]:
        images = tf.constant(result.inputs, tf.float32)
        idx = tf.constant(result.indices, tf.int32)
        alive = ~result.failed
        out = {"robustness": self._robustness(images, idx, result.activations, alive)}
        out["activation_norm"] = self._normalized(result, alive)
        out["probability"] = self._probability(images, idx, alive)
        out["transfer"], out["transfer_top5"], out["transfer_prob"] = self._transfer(result, alive)
        return out

    def _probability(self, images, idx, alive) -> float:
        if not self.is_class:
            return float("nan")
        logits = self.scores_model(images, training=False)
        probs = tf.gather(tf.nn.softmax(logits), idx, axis=1, batch_dims=1).numpy()
        return _mean(probs, alive)

    def _transfer(self, result: RenderResult, alive) -> tuple[float, float, float]:
        if self.judge is None:
            return float("nan"), float("nan"), float("nan")
        pixels = np.clip(result.pixels(), 0, 255).astype(np.float32)
        side = self.judge.native_size or pixels.shape[1]
        crops = random_crops(pixels, CROPS, CROP, self.seed, side)  # [B * CROPS, side, side, 3]
        judge_in = self.judge.preprocess.to_input(crops)
        probs = tf.nn.softmax(self.judge_scores(judge_in, training=False)).numpy()
        labels = np.repeat(result.indices, CROPS)
        p = probs[np.arange(len(labels)), labels]
        rank = (probs > p[:, None]).sum(axis=1)  # classes the judge rates above the target
        per_image = [(v.reshape(-1, CROPS).mean(axis=1)) for v in (rank == 0, rank < 5, p)]
        return tuple(_mean(v, alive) for v in per_image)

    def _robustness(self, images, idx, activations, alive) -> float:
        gen = tf.random.Generator.from_seed(self.seed)
        moved = [self.objective(transforms.random_affine(images, gen, 4, 0.1, 0.0), idx)
                 for _ in range(JITTERS)]
        mean_moved = tf.reduce_mean(tf.stack(moved), axis=0).numpy()
        base = np.asarray(activations, np.float64)
        ratio = np.where(base > 0, mean_moved / np.where(base > 0, base, 1), np.nan)
        return _mean(ratio, alive)

    def _normalized(self, result: RenderResult, alive) -> float:
        if self.best_real is None:
            return float("nan")
        ref = np.array([self.best_real[i] for i in result.indices])
        ratio = np.where(ref > 0, result.activations / np.where(ref > 0, ref, 1), np.nan)
        return _mean(ratio, alive)

    def _best_real(self) -> dict[int, float] | None:
        """Per target, the highest activation over real images (zoo/shapes models only, whose
        data the project generates)."""
        entry = zoo.ZOO.get(self.loaded.label)
        if entry is None or entry.classes != "shapes":
            return None
        from vissearch.zoo import data

        images, _ = data.generate(256, seed=777)
        x = tf.constant(self.loaded.preprocess.to_input(images.astype(np.float32)))
        best = {}
        for i in self.target.indices:
            idx = tf.fill([len(images)], i)
            best[i] = float(tf.reduce_max(self.objective(x, idx)))
        return best


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


def _mean(values, alive) -> float:
    v = np.asarray(values, np.float64)[np.asarray(alive, bool)]
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
