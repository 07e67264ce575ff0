"""Is one method named more than another, or within the readers' and classes' noise?

``BY_IMAGE.csv ...`` (``readers score`` writes ``FOLDER/figures/by_image.csv``) => for each pair
of methods, over the classes both were read on: the mean per-class difference of the share of
first guesses that named the class, its 95 % bootstrap interval over classes (scipy's
``stats.bootstrap``, BCa, 10,000 resamples, seeded), and the classes won, tied and lost with a
two-sided sign test (``stats.binomtest`` on wins against losses). Classes, not judgments, are the
unit: a draw's 20 classes are the sample, and a class's readers are not independent of each
other. ``--as OLD=NEW`` renames a method (draws named the same setting differently);
``--kinds`` reports ImageNet's animals (classes 0 to 397) and the other classes apart as well.

    python bench/readers_compare.py bench/readers_data/unseen7*-?/figures/by_image.csv \\
        --as entry160=entry
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd
from scipy import stats

from vissearch.models import labels
from vissearch.readers import score

ANIMALS = range(398)  # ImageNet-1k's classes 0-397 are animals; 398-999 objects, scenes, food


def per_class(files: list[str], renames: dict[str, str]) -> pd.DataFrame:
    """Share of first guesses that named each class, per method (classes x methods), weighted
    by judgments where a class was read on several sheets (``readers pool``'s pooling)."""
    rows = [{**r, "method": renames.get(r["method"], r["method"])}
            for r in score.scored_rows(files)]
    shares = pd.DataFrame(score.table(rows, ("class_name", "method")))
    return shares.pivot(index="class_name", columns="method", values="named")


def compare(table: pd.DataFrame, a: str, b: str, seed: int = 0) -> dict:
    both = table[[a, b]].dropna()
    diff = (both[a] - both[b]).to_numpy()
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    out = {"pair": f"{a} - {b}", "classes": len(diff), "difference": diff.mean(),
           "wins": wins, "ties": len(diff) - wins - losses, "losses": losses,
           "sign test p": stats.binomtest(wins, wins + losses).pvalue if wins + losses else 1.0}
    if len(diff) > 2 and np.ptp(diff) > 0:
        ci = stats.bootstrap((diff,), np.mean, n_resamples=10_000, method="BCa",
                             random_state=np.random.default_rng(seed)).confidence_interval
        out["95% low"], out["95% high"] = ci.low, ci.high
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("by_image", nargs="+", help="figures/by_image.csv of scored sheets")
    ap.add_argument("--as", dest="renames", action="append", default=[], metavar="OLD=NEW",
                    help="read method OLD as NEW")
    ap.add_argument("--kinds", action="store_true",
                    help="also apart: ImageNet's animals (classes 0-397) and the other classes")
    args = ap.parse_args()
    renames = dict(r.split("=", 1) for r in args.renames)
    table = per_class(args.by_image, renames)
    report(table, "")
    if args.kinds:
        index = {name: i for i, name in enumerate(labels.imagenet())}
        animal = np.array([index[name] in ANIMALS for name in table.index])
        report(table[animal], "animals (ImageNet 0-397): ")
        report(table[~animal], "the other classes: ")


def report(table: pd.DataFrame, title: str) -> None:
    print(f"\n{title}{len(table)} classes; named (first guess), the mean over classes:")
    print(table.mean().round(2).to_string())
    pairs = [compare(table, a, b) for a, b in itertools.combinations(table.columns, 2)
             if len(table[[a, b]].dropna())]  # pairs never read on the same class are left out
    print(pd.DataFrame(pairs).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
