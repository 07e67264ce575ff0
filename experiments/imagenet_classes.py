"""ImageNet class visualization, offline: do settings searched on four classes carry over?

The optimized model is zoo/efficientnet-lite0 (224 px); the judge is zoo/efficientnet-lite2
(260 px), an independent ImageNet model that is never optimized against. Methods:

1. naive ascent: RMS-normalized gradient steps with clipping and nothing else;
2. the blog's VGG16 class settings (lr 8000 on raw gradients, clipping, median 5 every 4, keep
   the last image before the final median);
3. lucid-style fixed settings (Fourier parameterization, decorrelated colour, Adam,
   jitter/scale/rotate);
4. the best trial of the random search over the blog's space on the four blog classes
   (configs/imagenet_classes.yaml), and
5. the best trial of the random search over the lucid space (configs/imagenet_classes_lucid.yaml).

Every method renders the four blog classes (seed 11) and then, with its settings unchanged, 20
other ImageNet classes drawn with ``numpy.random.default_rng(2016)`` that no search saw, with
seeds 11, 22 and 33. All at 224 px for 256 steps, or a search's own steps. Writes
docs/imagenet_classes.md and grids to docs/imagenet/; each method's figures are kept in
results/imagenet_classes_figures.json so that a stopped run resumes.

    python experiments/imagenet_classes.py          # runs the searches first if needed
    python experiments/imagenet_classes.py --methods readable "#27"   # only these methods
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vissearch import files, runconfig, runner  # noqa: E402
from vissearch.engine.render import render  # noqa: E402
from vissearch.imageio import write_png  # noqa: E402
from vissearch.models import labels
from vissearch.models import resolve as models
from vissearch.scoring import evaluate, scores
from vissearch.settings.config import RenderSettings, TargetSpec  # noqa: E402
from vissearch.study import store

ROOT = Path(__file__).resolve().parent.parent
BLOG = [130, 351, 736, 850]
SEEDS = (11, 22, 33)
CLASS_SEED = 2016
N_HELD_OUT = 20
BASE = dict(size=224, steps=256, batch_size=20)
METHODS = {
    "naive ascent": dict(lr=2.0, normalize_grad=True, clip=True, init="uniform"),
    "blog VGG16 settings": dict(lr=8000.0, normalize_grad=False, clip=True, median_size=5,
                                median_every=4, init="gaussian", keep="plain"),
    "lucid-style": dict(param="fourier", decorrelate=True, optimizer="adam", lr=0.05,
                        normalize_grad=False, clip=False, jitter=8, scale=0.1, rotate=5.0),
    # the best trial of the first lucid-space search (2026-11-23), kept as settings so that it
    # can be judged again without its study
    "lucid-space search best (#27)": dict(
        param="fourier", optimizer="adam", lr=0.0533753903869148, normalize_grad=False,
        clip=False, fourier_decay=1.241113980367214, jitter=5, scale=0.16557046804633774,
        rotate=8.340314827138759),
}
SEARCHES = {
    "random search, blog space": "configs/imagenet_classes.yaml",
    "random search, lucid space": "configs/imagenet_classes_lucid.yaml",
    "random search, readable space": "configs/imagenet_classes_readable.yaml",
}
# Figures measured by an older judge are measured again (4 crops before issue 16; now the whole
# image and 8 crops).
JUDGE_VERSION = 2
# Each method's figures, kept so that a stopped run resumes at the next method.
CACHE = ROOT / "results/imagenet_classes_figures.json"
# What follows this line in docs/imagenet_classes.md is written by hand and kept on a re-run.
BY_HAND = "<!-- written by hand below; kept when the script runs again -->"
COLUMNS = ("transfer_whole", "transfer_crops", "transfer", "transfer_top5", "probability",
           "edge_energy", "readability")


def held_out_classes() -> list[int]:
    """20 ImageNet classes that are not the blog's, fixed by CLASS_SEED."""
    pool = [i for i in range(1000) if i not in BLOG]
    rng = np.random.default_rng(CLASS_SEED)
    return sorted(int(i) for i in rng.choice(pool, N_HELD_OUT, replace=False))


def searched(chosen) -> tuple[dict, dict]:
    """Run (or resume) the chosen searches; the best trial's settings of each, and its record."""
    methods, found = {}, {}
    for label, path in SEARCHES.items():
        if not chosen(label):
            continue
        cfg = runconfig.load(str(ROOT / path))
        best = store.find_trial(runner.run(cfg), "best")
        name = f"{label}, best of {cfg.study.n_trials}"
        methods[name] = {k: v for k, v in best.user_attrs["settings"].items() if k != "seed"}
        found[name] = (best, path)
    return methods, found


def main() -> None:
    ap = argparse.ArgumentParser(description="ImageNet classes: do searched settings carry over?")
    ap.add_argument("--methods", nargs="*", default=None,
                    help="measure only the methods whose names contain one of these words")
    args = ap.parse_args()

    def chosen(name: str) -> bool:
        return args.methods is None or any(w in name for w in args.methods)

    found_methods, found = searched(chosen)
    methods = {k: v for k, v in {**METHODS, **found_methods}.items() if chosen(k)}
    loaded = models.load(runconfig.load(str(ROOT / SEARCHES["random search, blog space"])).model)
    held = held_out_classes()
    out = ROOT / "docs/imagenet"
    judges = {tuple(c): evaluate.Evaluator(loaded, TargetSpec(kind="class", indices=c),
                                           "zoo/efficientnet-lite2") for c in (BLOG, held)}
    done = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    for name, settings in methods.items():
        base = {**BASE, **settings, "batch_size": BASE["batch_size"]}  # a search's own steps
        key = json.dumps({**base, "judge_version": JUDGE_VERSION}, sort_keys=True)
        if done.get(name, {}).get("settings") != key:
            blog = measure(loaded, judges, BLOG, RenderSettings(**{**base, "seed": SEEDS[0]}),
                           out / f"{slug(name)}_blog.png")
            per_seed = [measure(loaded, judges, held, RenderSettings(**{**base, "seed": seed}),
                                out / f"{slug(name)}_held_out.png" if seed == SEEDS[0] else None)
                        for seed in SEEDS]
            done[name] = {"settings": key, "blog": blog, "held_out": summary(per_seed)}
            files.atomic_write(CACHE, lambda tmp: Path(tmp).write_text(json.dumps(done, indent=1)))
        print(name, "blog", fmt(done[name]["blog"]), "held out", done[name]["held_out"],
              flush=True)
    version = f'"judge_version": {JUDGE_VERSION}'
    rows = [(name, d["blog"], d["held_out"]) for name, d in done.items() if version in
            d["settings"]]
    write_table(rows, found, methods, held)


def measure(loaded, judges: dict, classes: list[int], settings: RenderSettings,
            png: Path | None) -> dict:
    target = TargetSpec(kind="class", indices=classes)
    judge = judges[tuple(classes)]
    start = time.perf_counter()
    result = render(loaded, target, settings)
    seconds = time.perf_counter() - start
    if png is not None:
        write_png(png, result.grid_image())
    return {**scores.compute(result, judge), "seconds_per_image": seconds / len(classes)}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def fmt(values: dict) -> str:
    return ", ".join(f"{k} {values[k]:.2f}" for k in COLUMNS)


def summary(per_seed: list[dict]) -> dict:
    keys = (*COLUMNS, "seconds_per_image")
    return {k: (float(np.mean([p[k] for p in per_seed])), float(np.std([p[k] for p in per_seed])))
            for k in keys}


HEAD = ("top-1 whole", "top-1 crops", "transfer", "top-5", "model probability", "edge energy",
        "readability")


def _cell(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2f}"


def write_table(rows, found, methods, held) -> None:
    names = labels.imagenet()
    lines = [
        "# ImageNet classes offline: do settings searched on four classes carry over?", "",
        "Optimized model: `zoo/efficientnet-lite0` (224 px). Judge: `zoo/efficientnet-lite2` "
        "(260 px), an independent ImageNet model never optimized against: top-1 on the whole "
        "image resized to 260 px, top-1 over 8 random 85% crops resized to 260 px, `transfer` "
        "the mean of the two, top-5 likewise. Model probability = Lite0's own softmax. Edge "
        "energy: natural photos 26-106 (vissearch/scoring/readability.py); readability: minus the "
        "distance outside the photos' bands of the four readability measures (0: inside all). "
        "All methods at 224 px for 256 steps (the readable search: its own 128). Produced by "
        "`python experiments/imagenet_classes.py` on 2 CPU cores.", "",
        "## The four blog classes (seed 11)", "",
        "| method | " + " | ".join(HEAD) + " |", "|---" * (len(HEAD) + 1) + "|",
    ]
    for name, blog, _ in rows:
        lines.append(f"| {name} | " + " | ".join(_cell(blog[k]) for k in COLUMNS) + " |")
    lines += [
        "", f"## 20 held-out classes, seeds {', '.join(map(str, SEEDS))}", "",
        f"Classes (drawn with `numpy.random.default_rng({CLASS_SEED})` from the 996 that are "
        "not the blog's): " + ", ".join(f"{i} {names[i]}" for i in held) + ".", "",
        "Mean ± standard deviation over the three seeds.", "",
        "| method | " + " | ".join(HEAD) + " | seconds per image |",
        "|---" * (len(HEAD) + 2) + "|",
    ]
    for name, _, held_out in rows:
        lines.append(f"| {name} | " + " | ".join(f"{_cell(m)} ± {_cell(d)}"
                                                 for m, d in held_out.values())
                     + " |")
    lines += ["", "## Grids", ""]
    for name, _, _ in rows:
        lines += [f"**{name}**: the blog classes, then the held-out classes (seed 11)", "",
                  f"![{name}, blog classes](imagenet/{slug(name)}_blog.png)", "",
                  f"![{name}, held-out classes](imagenet/{slug(name)}_held_out.png)", ""]
    for name, (best, path) in found.items():
        changed = {k: v for k, v in methods[name].items()
                   if RenderSettings.model_fields[k].default != v}
        lines += [f"**{name}** (`{path}`): trial #{best.number}, objective values "
                  f"{[round(v, 3) for v in best.values]}; settings that differ from the "
                  "defaults:", "", "```json", json.dumps(changed, indent=1, sort_keys=True),
                  "```", ""]
    doc = ROOT / "docs/imagenet_classes.md"
    kept = doc.read_text().partition(BY_HAND)[2] if doc.exists() else ""
    doc.write_text("\n".join(lines) + ("\n" + BY_HAND + kept if kept else "\n"))


if __name__ == "__main__":
    sys.exit(main())
