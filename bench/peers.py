"""The peers side by side: vissearch, Xplique (``optimize`` and ``maco``) and tf-keras-vis render
the same ImageNet classes from the same zoo/efficientnet-lite0, are judged the same way and timed
one after another in this one process.

Every peer runs with its authors' defaults, given only what it needs to run on this model: a
model with a fixed input shape and ``values_range`` set to Lite0's input range for Xplique, a
model that takes pixels 0..255 (its default ``input_range``) and a random seed image per class
for tf-keras-vis. MaCo runs its default 256 steps of 32 crops on a 512 px canvas (about 100 s
per image on these 2 CPU cores); ``--maco-steps`` runs fewer, its crop-size schedule stretched
over them.

The judge is zoo/efficientnet-lite2 as in every study: top-1 on the whole image, top-1 over 8
random 85% crops, and the readability measures of vissearch.scoring.readability with the natural
photos' bands. Writes docs/peers.md (the table with the photos' rows, kept hand-written notes)
and one labelled grid per method in docs/peers/; each method's figures and images are kept in
results/peers.json and results/peers/ so that a stopped run resumes at the next method, and
new scores are computed from the kept images. ``--only WORD`` renders only the methods whose
names hold it; delete a method's entry in results/peers.json to render it again.

    pip install -e ".[peers]"
    python -m vissearch run configs/imagenet_classes_readable.yaml   # first: the search
    python bench/peers.py
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

from vissearch import files, runconfig  # noqa: E402
from vissearch.engine import spectrum
from vissearch.engine.render import RenderResult, render  # noqa: E402
from vissearch.imageio import grid, write_png  # noqa: E402
from vissearch.models import labels
from vissearch.models import resolve as models
from vissearch.scoring import evaluate, readability, scores
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402
from vissearch.study import store

ROOT = Path(__file__).resolve().parent.parent
MODEL, JUDGE = "zoo/efficientnet-lite0", "zoo/efficientnet-lite2"
READABLE = ROOT / "configs/imagenet_classes_readable.yaml"
CACHE = ROOT / "results/peers.json"
PIXELS = ROOT / "results/peers"  # each method's images, float pixels
DOC, FIGS = ROOT / "docs/peers.md", ROOT / "docs/peers"
BY_HAND = "<!-- written by hand below; kept when the script runs again -->"
N_CLASSES, CLASS_SEED, SEED = 5, 5, 11
COLUMNS = ("transfer_whole", "transfer_crops", "transfer", "transfer_top5", *readability.MEASURES,
           "readability")


sys.path.insert(0, str(ROOT / "experiments"))
from imagenet_classes import BLOG, METHODS, held_out_classes  # noqa: E402


def classes() -> list[int]:
    """Five ImageNet classes that neither the searches nor the held-out experiment used."""
    used = set(BLOG) | set(held_out_classes())
    pool = [i for i in range(1000) if i not in used]
    return sorted(int(i) for i in np.random.default_rng(CLASS_SEED).choice(pool, N_CLASSES,
                                                                              replace=False))


def readable_best() -> dict:
    """The settings of the best trial of the readable search (its study must exist)."""
    cfg = runconfig.load(str(READABLE))
    best = store.find_trial(store.open_study(cfg.study.name, cfg.study.storage,
                                            cfg.study.results), "best")
    return {k: v for k, v in best.user_attrs["settings"].items() if k != "seed"}


def vissearch_method(settings: dict):
    def run(loaded, idx: list[int]) -> np.ndarray:
        s = RenderSettings(**{"size": 224, "steps": 256, **settings, "seed": SEED})
        return render(loaded, TargetSpec(kind="class", indices=idx), s).pixels()

    return run


def _fixed_model(loaded):
    """Lite0's class scores with a fixed 224 px input (Xplique needs one)."""
    import keras

    from vissearch.engine import objectives

    scores_model = objectives.class_scores(loaded.model)
    fixed = keras.models.clone_model(scores_model, input_tensors=keras.Input((224, 224, 3)))
    fixed.set_weights(scores_model.get_weights())
    return fixed


def _values_range(loaded) -> tuple[float, float]:
    lo, hi = loaded.preprocess.input_range
    return float(lo.min()), float(hi.max())


def xplique_optimize(loaded, idx: list[int]) -> np.ndarray:
    from xplique.features_visualizations import Objective, optimize

    objective = Objective.neuron(_fixed_model(loaded), -1, idx)
    images, _ = optimize(objective, values_range=_values_range(loaded))
    return loaded.preprocess.to_pixels(np.asarray(images[0]))


def xplique_maco(steps: int):
    def run(loaded, idx: list[int]) -> np.ndarray:
        from xplique.features_visualizations import Objective, maco

        model, out = _fixed_model(loaded), []
        for i in idx:  # MaCo optimizes one objective at a time
            img, _ = maco(Objective.neuron(model, -1, i), nb_steps=steps,
                          values_range=_values_range(loaded))
            out.append(loaded.preprocess.to_pixels(np.asarray(img)))
        return np.stack(out)

    return run


def tf_keras_vis(loaded, idx: list[int]) -> np.ndarray:
    import keras
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.utils.scores import CategoricalScore

    from vissearch.engine import objectives

    scores_model = objectives.class_scores(loaded.model)
    pixels = keras.Input((224, 224, 3))
    model = keras.Model(pixels, scores_model(loaded.preprocess.to_input(pixels)))
    seed = np.random.default_rng(SEED).uniform(0, 255, (len(idx), 224, 224, 3))
    out = ActivationMaximization(model, clone=False)(CategoricalScore(idx),
                                                     seed_input=seed.astype(np.float32))
    return np.asarray(out, np.float32)


def methods(args) -> dict:
    return {
        "vissearch, readable search best": vissearch_method(readable_best()),
        "vissearch, lucid-space search best (#27)": vissearch_method(
            METHODS["lucid-space search best (#27)"]),
        "Xplique 2.0.2 optimize": xplique_optimize,
        "Xplique 2.0.2 maco" + ("" if args.maco_steps == 256 else
                                f", {args.maco_steps} of 256 steps"): xplique_maco(
            args.maco_steps),
        "tf-keras-vis 0.8.7": tf_keras_vis,
    }


def judged(loaded, judge, idx: list[int], pixels: np.ndarray) -> dict:
    """Every score of the images, judged as a study judges its trials."""
    pixels = np.clip(pixels, 0, 255).astype(np.float32)
    n = len(idx)
    result = RenderResult(indices=idx, inputs=loaded.preprocess.to_input(pixels),
                          activations=np.zeros(n), curves=np.zeros((1, n)),
                          dead=np.zeros(n, bool), failed=np.zeros(n, bool),
                          preprocess=loaded.preprocess, settings=RenderSettings(), kind="class",
                          class_names=loaded.class_names)
    return scores.compute(result, judge)


def labelled_grid(pixels: np.ndarray, idx: list[int], names) -> np.ndarray:
    from sheets import cell

    return grid([cell(p, 224) for p in pixels], captions=[names[i] for i in idx])


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--maco-steps", type=int, default=256, help="MaCo's steps (its default 256)")
    ap.add_argument("--only", help="run only the methods whose name contains this")
    args = ap.parse_args()
    idx, names = classes(), labels.imagenet()
    loaded = models.load(ModelSpec(name=MODEL))
    judge = evaluate.Evaluator(loaded, TargetSpec(kind="class", indices=idx), JUDGE)
    done = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    FIGS.mkdir(parents=True, exist_ok=True)
    PIXELS.mkdir(parents=True, exist_ok=True)
    for name, run in methods(args).items():
        if args.only and args.only not in name:
            continue
        saved = PIXELS / f"{slug(name)}.npy"
        if name not in done or not saved.exists():
            print(f"{name} ...", flush=True)
            start = time.perf_counter()
            pixels = run(loaded, idx)
            seconds = (time.perf_counter() - start) / len(idx)
            files.atomic_write(saved, lambda tmp, p=pixels: np.save(tmp, p), suffix=".npy")
            write_png(FIGS / f"{slug(name)}.png", labelled_grid(pixels, idx, names))
            done[name] = {"seconds_per_image": seconds, "side": int(pixels.shape[1])}
        elif set(COLUMNS) <= set(done[name]):
            continue
        # judged again from the saved images when the scores change
        figures = judged(loaded, judge, idx, np.load(saved))
        done[name] = {**done[name], **figures}
        files.atomic_write(CACHE, lambda tmp: Path(tmp).write_text(json.dumps(done, indent=1)))
        print(name, {k: round(done[name][k], 3) for k in (*COLUMNS, "seconds_per_image")},
              flush=True)
    write_doc(done, idx, names)


def write_doc(done: dict, idx: list[int], names) -> None:
    head = ["top-1 whole", "top-1 crops", "transfer", "top-5", *readability.MEASURES,
            "readability", "s / image"]
    lines = [
        "# The peers side by side", "",
        "Produced by `python bench/peers.py` on 2 CPU cores: every method renders the same "
        f"{len(idx)} ImageNet classes from `{MODEL}`, one after another in one process, and "
        f"`{JUDGE}` judges every image the same way (top-1 on the whole image resized to 260 px, "
        "top-1 over 8 random 85% crops; `transfer` is the mean of the two). The readability "
        "measures (vissearch/scoring/readability.py) are computed on the image resized to 224 px; "
        "`readability` is minus the distance outside the natural photos' bands (0: inside all "
        "five).", "",
        "Classes (drawn with `numpy.random.default_rng(5)` from those no search and no "
        "held-out experiment used): " + ", ".join(f"{i} {names[i]}" for i in idx) + ".", "",
        "| method | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|",
    ]
    for name, f in done.items():
        cells = [f"{f[k]:.2f}" if abs(f[k]) < 10 else f"{f[k]:.0f}" for k in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {f['seconds_per_image']:.0f} |")
    photos = readability.natural_values()
    for k, photo in enumerate(spectrum.PHOTOS):
        cells = [f"{photos[m][k]:.2f}" if photos[m][k] < 10 else f"{photos[m][k]:.0f}"
                 for m in readability.MEASURES]
        lines.append(f"| photo: {photo} | — | — | — | — | " + " | ".join(cells) + " | 0.00 | — |")
    bands = ", ".join(f"{m} {lo:g}..{hi:g}" for m, (lo, hi) in readability.BANDS.items())
    lines += ["", f"Natural photos' bands: {bands}.", "", "## Grids", ""]
    for name in done:
        lines += [f"**{name}**", "", f"![{name}](peers/{slug(name)}.png)", ""]
    kept = DOC.read_text().partition(BY_HAND)[2] if DOC.exists() else ""
    DOC.write_text("\n".join(lines) + ("\n" + BY_HAND + kept if kept else "\n"))


if __name__ == "__main__":
    sys.exit(main())
