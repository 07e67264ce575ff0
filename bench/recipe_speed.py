"""Seconds per image of a shipped recipe's class entry on 2 CPU cores, against the bare network.

For each recipe, renders 4 classes at two step counts and takes the difference, so tracing and
the final scoring drop out, then scales to the recipe's own steps; CPU is the process time over
both cores. The baseline, run in the same process, is one forward pass and input gradient of
the network alone on the batch the recipe shows it (4 images, or 4 × crops), so ``× network``
is what the parameterization, transforms and update add on top.

    python bench/recipe_speed.py fourier-reference efficientnet-lite0
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from vissearch import recipes  # noqa: E402
from vissearch.engine import objectives  # noqa: E402
from vissearch.engine.render import render  # noqa: E402
from vissearch.models import resolve  # noqa: E402
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

CLASSES = [130, 351, 736, 850]  # the blog's four, the tuning classes


def network_step(loaded, views: int, side: int) -> float:
    """Wall seconds of one forward pass and input gradient of ``views`` images."""
    model = objectives.class_scores(loaded.model)
    x = tf.random.uniform([views, side, side, 3])

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(model(x, training=False)[:, 1])
        return tape.gradient(y, x)

    step(x)
    start = time.perf_counter()
    for _ in range(10):
        step(x)
    return (time.perf_counter() - start) / 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipes", nargs="+")
    args = ap.parse_args()
    print("| recipe | steps | CPU s / image | wall s / image | wall s / step | × network |")
    print("|---|---|---|---|---|---|")
    for name in args.recipes:
        recipe = recipes.load(recipes.find(name))
        loaded = resolve.load(ModelSpec(**recipe.model))
        target = TargetSpec(kind="class", indices=CLASSES)
        entry, _ = recipes.lookup(recipe, target)
        spent = {}
        render(loaded, target, RenderSettings(**{**entry.render, "seed": 7, "steps": 4}))
        for steps in (16, 48):  # after a first render: its one-time costs would not cancel
            s = RenderSettings(**{**entry.render, "seed": 7, "steps": steps})
            cpu, wall = time.process_time(), time.perf_counter()
            render(loaded, target, s)
            spent[steps] = (time.process_time() - cpu, time.perf_counter() - wall)
        own = RenderSettings(**{**entry.render, "seed": 7})
        per_step = [(spent[48][k] - spent[16][k]) / 32 for k in (0, 1)]
        cpu, wall = (v * own.steps / len(CLASSES) for v in per_step)
        net = network_step(loaded, len(CLASSES) * max(own.crops, 1), own.size)
        print(f"| {name} | {own.steps} | {cpu:.1f} | {wall:.1f} | {per_step[1]:.3f} |"
              f" {per_step[1] / net:.1f} |", flush=True)


if __name__ == "__main__":
    main()
