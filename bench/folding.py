"""A recipe's class entry with batch normalizations folded and not, alternated in one process.

For each round, renders the entry's 4 classes at two step counts each way (the difference
cancels tracing and scoring, as in ``recipe_speed.py``), folded and unfolded in turn, so both
meet the same machine; reports wall and CPU seconds per step and the ratio, the network alone
forward and back each way, and how far the folded network's class scores lie from the
unfolded one's.

    python bench/folding.py efficientnet-lite0 --rounds 3
    python bench/folding.py efficientnet-lite0 --rounds 0 --sheet docs/readers/fold_compare.jpg

``--sheet`` also renders the entry one class at a time for the first 6 classes of the tuning
draw 6 (``readers_unseen.py``), unfolded then folded, printing CPU seconds per image, and
writes the two rows as one sheet (no captions).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from recipe_speed import network_step  # noqa: E402  (bench/ is the script's folder)

from vissearch import recipes  # noqa: E402
from vissearch.engine import folding  # noqa: E402
from vissearch.engine.render import render  # noqa: E402
from vissearch.models import resolve  # noqa: E402
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

CLASSES = [130, 351, 736, 850]  # recipe_speed.py's


def per_step(loaded, target, entry: dict, fold: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of one step of the 4-image batch."""
    spent = {}
    for steps in (16, 48):
        s = RenderSettings(**{**entry, "seed": 7, "steps": steps, "fold_batchnorm": fold})
        cpu, wall = time.process_time(), time.perf_counter()
        render(loaded, target, s)
        spent[steps] = (time.perf_counter() - wall, time.process_time() - cpu)
    return tuple((spent[48][k] - spent[16][k]) / 32 for k in (0, 1))


def sheet(loaded, recipe, path: str) -> None:
    """One row per way of the first 6 classes of the tuning draw 6, one class at a time."""
    from readers_unseen import classes

    rows = []
    for fold in (False, True):
        row = []
        for index in classes(6)[:6]:
            target = TargetSpec(kind="class", indices=[index])
            entry = recipes.lookup(recipe, target)[0].render
            cpu = time.process_time()
            result = render(loaded, target,
                            RenderSettings(**{**entry, "seed": 7, "fold_batchnorm": fold}))
            print(f"{'folded' if fold else 'as loaded'}, class {index}: "
                  f"{time.process_time() - cpu:.1f} CPU s", flush=True)
            tile = Image.fromarray(result.pixels()[0].astype(np.uint8)).resize((256, 256))
            row.append(np.asarray(tile))
        rows.append(np.concatenate(row, 1))
    Image.fromarray(np.concatenate(rows, 0)).save(path, quality=85)


def table(loaded, plain, fold, own, rows) -> None:
    """The timings' table, the network alone timed here, and the per-round speed-ups."""
    views = len(CLASSES) * max(own.crops, 1)
    nets = {f: network_step(dataclasses.replace(loaded, model=m), views, own.size)
            for f, m in ((False, plain), (True, fold))}
    print("| network | wall s / step | CPU s / step | CPU s / image at the entry's steps |"
          " network alone, wall s |")
    print("|---|---|---|---|---|")
    for fold_on in (False, True):
        wall = statistics.median(w for w, _ in rows[fold_on])
        cpu = statistics.median(c for _, c in rows[fold_on])
        print(f"| {'folded' if fold_on else 'as loaded'} | {wall:.3f} | {cpu:.3f} |"
              f" {cpu * own.steps / len(CLASSES):.1f} | {nets[fold_on]:.3f} |")
    ratio = [u[0] / f[0] for u, f in zip(rows[False], rows[True], strict=True)]
    print(f"speed-up, wall, per round: {', '.join(f'{v:.2f}' for v in ratio)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sheet", help="also write the tuning draw 6 sheet here")
    args = ap.parse_args()
    recipe = recipes.load(recipes.find(args.recipe))
    loaded = resolve.load(ModelSpec(**recipe.model))
    target = TargetSpec(kind="class", indices=CLASSES)
    entry = recipes.lookup(recipe, target)[0].render
    own = RenderSettings(**entry)
    plain, fold = loaded.model, folding.folded(loaded.model)
    pairs = len(folding.pairs(plain))
    x = tf.random.uniform([8, own.size, own.size, 3], -1.0, 1.0, seed=2)
    gap = float(tf.reduce_max(tf.abs(plain(x) - fold(x))))
    print(f"{args.recipe}: {pairs} batch normalizations folded; class scores differ by at most "
          f"{gap:.2e} (largest score {float(tf.reduce_max(tf.abs(plain(x)))):.1f})")
    for fold_on in (False, True):  # one untimed render each way: tracing, one-time costs
        render(loaded, target, RenderSettings(**{**entry, "steps": 4, "fold_batchnorm": fold_on}))
    rows = {False: [], True: []}
    for r in range(args.rounds):
        for fold_on in ((False, True) if r % 2 == 0 else (True, False)):
            rows[fold_on].append(per_step(loaded, target, entry, fold_on))
    if args.rounds:
        table(loaded, plain, fold, own, rows)
    if args.sheet:
        sheet(loaded, recipe, args.sheet)


if __name__ == "__main__":
    main()
