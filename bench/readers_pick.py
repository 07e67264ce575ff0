"""Tuning round 11: would keeping the better of two seeds' images be named more often?

No render: the reader sheets of the tuning draws (6, 5 and 3; never a report draw) hold two to
eight images of the same class made by the Lite0 class entry or a variant of it that readers
named about as often (other seeds, `rivals: 0.5`, a wider frame...). For every score of the
finished image, over every pair of one class's images that readers named at different rates:
how often the score orders them as readers did (0.5 is chance), and what readers would have
named had the higher-scoring image of each pair (each triple) been kept, against a random one
and against the better one. The scores are what ``candidates: N`` can pick by
(:mod:`vissearch.engine.candidates`): the mean class probability over the 9 half-side tiles,
under an independent judge (Lite2) or the rendering model (Lite0), and the same on the whole
image.

    python bench/readers_pick.py [--out bench/readers_data/pick_round11.md]

``--draw SHEET ... --between A,B --csv OUT`` applies the pick to a read draw instead: for each
class, of the images of methods A and B (each read on one of the sheets), the one each judge
keeps, written as ``by_image.csv`` rows of the methods ``pick-Lite2`` and ``pick-Lite0`` (the
kept image's readers' figures) for ``bench/readers_compare.py``.
"""

from __future__ import annotations

import argparse
import collections
import csv
import itertools
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from vissearch.engine import candidates  # noqa: E402
from vissearch.models import resolve  # noqa: E402
from vissearch.settings.config import ModelSpec  # noqa: E402

DATA = Path(__file__).resolve().parent / "readers_data"
# the entry and the variants of it that readers named about as often (docs/readers.md)
ENTRY_LIKE = {"entry", "shipped", "rivals05", "s160x8", "centre010", "frame075", "cm03"}
JUDGES = {"Lite2 (independent)": "zoo/efficientnet-lite2",
          "Lite0 (the rendering model)": "zoo/efficientnet-lite0"}


def images() -> list[dict]:
    """Each entry-like image of a tuning sheet once, with the share of its readers (over all
    the sheets that showed it) who named it at the first guess."""
    seen: dict[str, dict] = {}
    for key_file in sorted(DATA.glob("tune*/key.json")):
        by_image = key_file.parent / "figures" / "by_image.csv"
        if "lite2" in key_file.parent.name or not by_image.is_file():
            continue
        rows = {r["image"]: r for r in csv.DictReader(open(by_image))}
        for item in json.loads(key_file.read_text())["images"]:
            if item["method"] not in ENTRY_LIKE or item["image"] not in rows:
                continue
            if not Path(item["origin"]).is_file():
                continue
            row, d = rows[item["image"]], seen.setdefault(item["origin"], {
                "origin": item["origin"], "cls": item["cls"], "judgments": 0, "named": 0.0})
            d["judgments"] += int(row["judgments"])
            d["named"] += float(row["named"]) * int(row["judgments"])
    out = list(seen.values())
    for d in out:
        d["named"] /= d["judgments"]
    return out


def picks(sheets: list[str], between: list[str], out: str) -> None:
    """The picks of each judge among ``between`` on a read draw, as by_image.csv rows."""
    rows, origin = {}, {}
    for sheet in map(Path, sheets):
        by_image = {r["image"]: r for r in csv.DictReader(open(sheet / "figures/by_image.csv"))}
        for item in json.loads((sheet / "key.json").read_text())["images"]:
            if item["method"] in between and item["image"] in by_image:
                rows[item["cls"], item["method"]] = by_image[item["image"]]
                origin[item["cls"], item["method"]] = item["origin"]
    classes = sorted({c for c, m in rows if all((c, b) in rows for b in between)})
    found = [(c, m) for c in classes for m in between]
    pixels = [np.asarray(Image.open(origin[k]).convert("RGB")) for k in found]
    written = []
    for label, name in JUDGES.items():
        judge = resolve.load(ModelSpec(name=name))
        score = candidates.tile_probability(judge, pixels, [c for c, _ in found])
        score = score.reshape(len(classes), len(between))
        for c, k in zip(classes, candidates.pick(score.T), strict=True):
            kept = rows[c, between[k]]
            written.append({**kept, "method": f"pick-{label.split()[0]}",
                            "image": f"{kept['image']}-{between[k]}"})
            print(f"{label.split()[0]}: {kept['class_name']}: {between[k]} "
                  f"({' / '.join(f'{v:.3f}' for v in score[classes.index(c)])})")
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(written[0]))
        w.writeheader()
        w.writerows(written)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the table (markdown) here")
    ap.add_argument("--draw", nargs="+", metavar="SHEET", help="a read draw's sheet folders")
    ap.add_argument("--between", default="entry,seed8", help="the two methods to pick from")
    ap.add_argument("--csv", help="with --draw: the by_image.csv to write")
    args = ap.parse_args()
    if args.draw:
        picks(args.draw, args.between.split(","), args.csv)
        return
    found = images()
    pixels = [np.asarray(Image.open(d["origin"]).convert("RGB").resize((448, 448),
                                                                      Image.LANCZOS))
              for d in found]
    classes = [d["cls"] for d in found]
    named = np.array([d["named"] for d in found])
    scores = {}
    for label, name in JUDGES.items():
        judge = resolve.load(ModelSpec(name=name))
        scores[f"{label}: 9 tiles"] = candidates.tile_probability(judge, pixels, classes)
        scores[f"{label}: whole image"] = candidates.class_probability(judge, pixels, classes)
    by_class = collections.defaultdict(list)
    for i, c in enumerate(classes):
        by_class[c].append(i)
    by_class = {c: v for c, v in by_class.items() if len(v) > 1}
    pairs = [(a, b) for v in by_class.values() for a, b in itertools.combinations(v, 2)
             if named[a] != named[b]]
    lines = [f"{sum(map(len, by_class.values()))} images of {len(by_class)} classes (tuning "
             f"draws only), {int(sum(d['judgments'] for d in found))} judgments; {len(pairs)} "
             "pairs of one class named at different rates", ""]

    def kept(n: int, value) -> float:
        """Over classes with n images or more: the mean over every n of them of ``value`` (the
        named share of the one kept)."""
        return float(np.mean([np.mean([value(list(s)) for s in itertools.combinations(v, n)])
                              for v in by_class.values() if len(v) >= n]))

    def best(score):
        return lambda s: named[max(s, key=lambda i: score[i])]

    def any_one(s):
        return named[s].mean()  # a random one of them

    lines += ["| picked by | orders a pair as readers did | named: better of 2 | better of 3 |",
              "|---|---|---|---|",
              f"| none (a random one) | 0.50 | {kept(2, any_one):.3f} | {kept(3, any_one):.3f} |"]
    for label, sc in scores.items():
        order = np.mean([(sc[a] > sc[b]) == (named[a] > named[b]) for a, b in pairs])
        lines.append(f"| {label} | {order:.2f} | {kept(2, best(sc)):.3f} | "
                     f"{kept(3, best(sc)):.3f} |")
    lines.append(f"| readers themselves | 1.00 | {kept(2, best(named)):.3f} | "
                 f"{kept(3, best(named)):.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
