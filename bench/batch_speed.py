"""Seconds per image of a recipe's class entry rendered one class at a time against several
together, side by side in one process (``bench/readers_unseen.py --batch``).

Rounds alternate the two ways so that a machine's drift falls on both; each way renders the
same classes. CPU is the process time over all cores, wall the elapsed time.

    python bench/batch_speed.py --recipe efficientnet-lite0 --batch 4 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vissearch import recipes  # noqa: E402
from vissearch.engine.render import render  # noqa: E402
from vissearch.models import resolve  # noqa: E402
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

CLASSES = [130, 351, 736, 850]  # the blog's four, the tuning classes


def timed(loaded, settings: RenderSettings, groups: list[list[int]]) -> tuple[float, float]:
    """CPU and wall seconds per image of rendering each group of classes as one batch."""
    cpu, wall = time.process_time(), time.perf_counter()
    for idx in groups:
        render(loaded, TargetSpec(kind="class", indices=idx), settings).pixels()
    n = sum(len(g) for g in groups)
    return (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="efficientnet-lite0")
    ap.add_argument("--model", default="zoo/efficientnet-lite0")
    ap.add_argument("--batch", type=int, default=4, help="classes together, against 1")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    classes = CLASSES[:args.batch] if args.batch <= len(CLASSES) else list(range(args.batch))
    entry, _ = recipes.lookup(recipes.load(recipes.find(args.recipe)),
                              TargetSpec(kind="class", indices=classes))
    settings = RenderSettings(**{**entry.render, "seed": 7})
    loaded = resolve.load(ModelSpec(name=args.model))
    ways = {"one at a time": [[c] for c in classes], f"{len(classes)} together": [classes]}
    for groups in ways.values():  # each batch shape traces its own step: not timed
        timed(loaded, settings, groups[:1])
    seen: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
    for r in range(args.rounds):
        for way in (ways if r % 2 == 0 else reversed(ways)):
            seen[way].append(timed(loaded, settings, ways[way]))
            print(f"round {r + 1}, {way}: {seen[way][-1][0]:.1f} CPU s, "
                  f"{seen[way][-1][1]:.1f} wall s an image", flush=True)
    base = np.mean(seen[f"{len(classes)} together"], axis=0)
    print(f"\n| way | CPU s / image | wall s / image | × {len(classes)} together (wall) |")
    print("|---|---|---|---|")
    for way, runs in seen.items():
        cpu, wall = np.mean(runs, axis=0)
        print(f"| {way} | {cpu:.1f} | {wall:.1f} | {wall / base[1]:.2f} |")


if __name__ == "__main__":
    main()
