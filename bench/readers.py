"""Which automatic score predicts what blind readers name?

``(key.json, by_image.csv) ... => table``: for every image of one or more scored reader sheets,
the share of readers who named it (``readers score`` writes ``figures/by_image.csv``) against
scores computed from the image alone: the independent judge (zoo/efficientnet-lite2) on the
whole image, on a small thumbnail, on a blurred copy, over random crops and over a grid of
tiles (the share of the image the class evidence covers), both judges together, and the
readability measures. For each score: ROC AUC over images of "named by most readers" (0.5 is
chance), and the rank agreement (Spearman) of the methods' mean score with their named share.
An image is read from the sheet folder beside its key, else from where the key says it came.

    python bench/readers.py out/unseen-sheet/key.json out/unseen-sheet/figures/by_image.csv \
        [KEY BY_IMAGE ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage, stats  # noqa: E402

from vissearch.engine import objectives  # noqa: E402
from vissearch.models import resolve  # noqa: E402
from vissearch.scoring import readability  # noqa: E402
from vissearch.settings.config import ModelSpec  # noqa: E402

JUDGE = "zoo/efficientnet-lite2"
SECOND = "zoo/efficientnet-lite0"  # the model most images were rendered on: not independent


BATCH = 16  # images a judge sees at once: memory grew with the sheets (240 images: killed)


def _probs(scores_model, pre, side: int, pixels: np.ndarray) -> np.ndarray:
    x = np.stack([np.asarray(Image.fromarray(p).resize((side, side), Image.BILINEAR))
                  for p in pixels]).astype(np.float32)
    logits = np.concatenate([np.asarray(scores_model(pre.to_input(x[i:i + BATCH])))
                             for i in range(0, len(x), BATCH)])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def scores_of(pixels: np.ndarray, classes: list[int]) -> dict[str, np.ndarray]:
    """Every candidate score, one value per image (higher: expected easier to name)."""
    loaded = resolve.load(ModelSpec(name=JUDGE))
    model, pre = objectives.class_scores(loaded.model), loaded.preprocess
    side = int(loaded.model.input_shape[1] or 260)
    rows = np.arange(len(classes))
    out: dict[str, np.ndarray] = {}
    whole = _probs(model, pre, side, pixels)
    out["judge whole: p(class)"] = whole[rows, classes]
    out["judge whole: top-1"] = (whole.argmax(1) == classes).astype(float)
    thumbs = np.stack([np.asarray(Image.fromarray(p).resize((48, 48), Image.LANCZOS)
                                  .resize(p.shape[:2], Image.BILINEAR)) for p in pixels])
    out["judge on a 48 px thumbnail: p(class)"] = _probs(model, pre, side, thumbs)[rows, classes]
    blurred = np.stack([ndimage.gaussian_filter(p.astype(np.float32), (4, 4, 0)) for p in pixels])
    out["judge on a blurred copy (sigma 4): p(class)"] = _probs(
        model, pre, side, np.clip(blurred, 0, 255).astype(np.uint8))[rows, classes]
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(8):
        n = pixels.shape[1]
        s = int(0.6 * n)
        y, x = rng.integers(0, n - s, 2)
        crops.append(_probs(model, pre, side, pixels[:, y:y + s, x:x + s])[rows, classes])
    out["judge over 8 crops of 60%: mean p(class)"] = np.mean(crops, axis=0)
    out["judge over 8 crops of 60%: share top-1"] = np.mean(
        [c > 0.5 for c in crops], axis=0)  # a rough top-1 where p > 0.5
    n = pixels.shape[1]
    tiles = [_probs(model, pre, side, pixels[:, y:y + n // 2, x:x + n // 2])
             for y in (0, n // 4, n // 2) for x in (0, n // 4, n // 2)]
    top5 = [np.argsort(-t, axis=1)[:, :5] for t in tiles]
    out["coverage: share of 9 half-side tiles with the class in the judge's top 5"] = np.mean(
        [(t == np.array(classes)[:, None]).any(axis=1) for t in top5], axis=0)
    second = resolve.load(ModelSpec(name=SECOND))
    other = _probs(objectives.class_scores(second.model), second.preprocess,
                   int(second.model.input_shape[1] or 224), pixels)[rows, classes]
    out["both judges (Lite2, Lite0) whole: mean p(class)"] = (whole[rows, classes] + other) / 2
    measured = [readability.measures(p) for p in pixels]
    for name in readability.NAMES:
        out[f"readability: {name}"] = np.array([m[name] for m in measured])
    out["readability: outside the photos' bands (negated)"] = -np.array(
        [sum(readability.outside(m[n], readability.BANDS[n]) for n in readability.NAMES)
         for m in measured])
    return out


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = score[positive], score[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(stats.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def _pixels(key_path: Path, item: dict) -> np.ndarray:
    on_sheet = key_path.parent / "sheet" / f"{item['image']}.png"
    path = on_sheet if on_sheet.is_file() else Path(item["origin"])
    return np.asarray(Image.open(path).convert("RGB").resize((448, 448), Image.LANCZOS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sheets", nargs="+", metavar="KEY BY_IMAGE",
                    help="a sheet's key.json and its figures/by_image.csv, one pair per sheet")
    ap.add_argument("--out", help="write the table (markdown) here")
    args = ap.parse_args()
    if len(args.sheets) % 2:
        ap.error("give a key.json and a by_image.csv for each sheet")
    items, share, pixels, judgments = [], [], [], 0
    for key_file, by_image in zip(args.sheets[::2], args.sheets[1::2], strict=True):
        key_path = Path(key_file)
        key = json.loads(key_path.read_text())
        rows = {r["image"]: r for r in csv.DictReader(open(by_image))}
        for item in key["images"]:
            if item["image"] in rows:
                items.append(item)
                share.append(float(rows[item["image"]]["named"]))
                judgments += int(rows[item["image"]]["judgments"])
                pixels.append(_pixels(key_path, item))
    share, pixels = np.array(share), np.stack(pixels)
    methods = sorted({i["method"] for i in items})
    by_method = {m: np.array([i["method"] == m for i in items]) for m in methods}
    lines = [f"{len(items)} images, {judgments} judgments, {len(methods)} methods; named by "
             f"most readers: {int((share > 0.5).sum())}", "",
             "| score | ROC AUC (named by most) | Spearman over methods |", "|---|---|---|"]
    scores = scores_of(pixels, [i["cls"] for i in items])
    for name, values in scores.items():
        rho = stats.spearmanr([values[by_method[m]].mean() for m in methods],
                              [share[by_method[m]].mean() for m in methods]).statistic
        lines.append(f"| {name} | {auc(values, share > 0.5):.2f} | {rho:.2f} |")
    whole, crops = scores["judge whole: top-1"], scores["judge over 8 crops of 60%: share top-1"]
    lines += ["", "| method | images | named (mean share) | judge top-1 whole | "
              "judge top-1 crops |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {by_method[m].sum()} | {share[by_method[m]].mean():.2f} | "
              f"{whole[by_method[m]].mean():.2f} | {crops[by_method[m]].mean():.2f} |"
              for m in methods]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
