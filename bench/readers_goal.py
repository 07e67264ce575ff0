"""How often would one draw of 20 classes meet the readers' goal, by chance alone?

Issue 26's goal is read on one draw: the shipped entry's images named (first guess) at least
0.8 of the time, and more than Xplique's ``maco`` and ``optimize``. A draw's figure moves with
its classes and readers as much as with the method (0.67-0.83 for one entry over seven draws),
so this asks what the reader data say of that: resample ``--classes`` classes with replacement
from every class all three methods were read on (each class's share of first guesses that
named it, its readers' noise included as a draw has it) and count the resamples that meet the
goal. ``--shift D`` adds D to the entry's mean of each resample: the chance an entry named D
more often would have. One bootstrap, seeded; classes, not judgments, are the unit.

    python bench/readers_goal.py bench/readers_data/unseen4e-?/figures/by_image.csv \\
        bench/readers_data/unseen7[ab]-?/figures/by_image.csv \\
        bench/readers_data/unseen{8,9,10,11,12,13}-?/figures/by_image.csv --as entry160=entry
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from readers_compare import per_class


def chances(table: pd.DataFrame, entry: str, rivals: list[str], classes: int, shifts: list[float],
            goal: float = 0.8, resamples: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Per shift: the share of resampled draws where the entry reaches ``goal`` and is named more
    than every rival, and each part of that alone."""
    both = table[[entry, *rivals]].dropna()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(both), size=(resamples, classes))
    means = {m: both[m].to_numpy()[picks].mean(axis=1) for m in both.columns}
    rows = []
    for shift in shifts:
        mine = means[entry] + shift
        ahead = np.all([mine > means[r] for r in rivals], axis=0)
        rows.append({"entry shifted by": shift, "entry's mean": mine.mean(),
                     f">= {goal}": (mine >= goal).mean(),
                     **{f"> {r}": (mine > means[r]).mean() for r in rivals},
                     "goal met": ((mine >= goal) & ahead).mean()})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("by_image", nargs="+", help="figures/by_image.csv of scored sheets")
    ap.add_argument("--as", dest="renames", action="append", default=[], metavar="OLD=NEW",
                    help="read method OLD as NEW")
    ap.add_argument("--entry", default="entry")
    ap.add_argument("--rivals", default="xmaco,xopt",
                    help="the rivals' method names, comma-separated")
    ap.add_argument("--classes", type=int, default=20, help="classes in one draw")
    ap.add_argument("--shift", type=float, action="append", default=None,
                    help="add this to the entry's mean (repeatable; 0 always shown)")
    args = ap.parse_args()
    table = per_class(args.by_image, dict(r.split("=", 1) for r in args.renames))
    rivals = args.rivals.split(",")
    missing = [m for m in [args.entry, *rivals] if m not in table.columns]
    if missing:
        raise SystemExit(f"no method {missing} in the sheets; they hold {list(table.columns)}")
    shifts = [0.0, *(args.shift or [])]
    n = len(table[[args.entry, *rivals]].dropna())
    print(f"{n} classes read for all of {args.entry}, {', '.join(rivals)}; draws of "
          f"{args.classes} resampled from them")
    print(chances(table, args.entry, rivals, args.classes, shifts).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
