"""Images for blind readers on ImageNet classes that no search, recipe or reader study used.

Each method renders one image per class on zoo/efficientnet-lite0; the images land in
``results/unseen/METHOD/target_NNNN.png`` (448 px, so that size tells nothing of the method)
and the CPU seconds per image in ``results/unseen/seconds.json``. A stopped run resumes at the
first missing image. Then, as any user would:

    python -m vissearch readers make results/unseen/* --out out/unseen-sheet --seed 26
    # readers answer out/unseen-sheet/sheet/ blind
    python -m vissearch readers score out/unseen-sheet/key.json ANSWERS...

Methods: vissearch's shipped Lite0 class recipe, the ``fourier-reference`` and
``maco-reference`` recipes, Xplique 2.0.2 ``optimize`` and ``maco`` at their defaults
(``pip install -e ".[peers]"`` and ``pip install --no-deps xplique==2.0.2``).

    python bench/readers_unseen.py --only fourier
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
from PIL import Image  # noqa: E402

from vissearch import recipes  # noqa: E402
from vissearch.engine.render import render  # noqa: E402
from vissearch.imageio import write_png  # noqa: E402
from vissearch.models import resolve  # noqa: E402
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "unseen"
N_CLASSES, CLASS_SEED, SEED, SIDE = 20, 26, 7, 448
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "experiments"))


def used_classes() -> set[int]:
    """Every class a config, experiment, recipe source, peer run or reader study named."""
    from imagenet_classes import BLOG, held_out_classes
    from peers import classes as peer_classes

    return set(BLOG) | set(held_out_classes()) | set(peer_classes())


def classes() -> list[int]:
    pool = [i for i in range(1000) if i not in used_classes()]
    return sorted(int(i) for i in np.random.default_rng(CLASS_SEED).choice(pool, N_CLASSES,
                                                                              replace=False))


def recipe_method(name: str):
    """A shipped recipe's class entry, rendered as the recipe says (its own size and canvas)."""
    def run(loaded, idx: list[int]) -> np.ndarray:
        recipe = recipes.load(recipes.find(name))
        entry, _ = recipes.lookup(recipe, TargetSpec(kind="class", indices=idx))
        s = RenderSettings(**{**entry.render, "seed": SEED})
        return render(loaded, TargetSpec(kind="class", indices=idx), s).pixels()

    return run


def xplique(kind: str):
    def run(loaded, idx: list[int]) -> np.ndarray:
        import peers

        return (peers.xplique_optimize(loaded, idx) if kind == "optimize" else
                peers.xplique_maco(256)(loaded, idx))

    return run


METHODS = {
    "vissearch-shipped": recipe_method("efficientnet-lite0"),
    "vissearch-fourier-reference": recipe_method("fourier-reference"),
    "vissearch-maco-reference": recipe_method("maco-reference"),
    "xplique-optimize": xplique("optimize"),
    "xplique-maco": xplique("maco"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="the methods whose name contains this")
    ap.add_argument("--batch", type=int, default=4, help="classes rendered together")
    args = ap.parse_args()
    idx = classes()
    print("classes:", idx, flush=True)
    loaded = resolve.load(ModelSpec(name="zoo/efficientnet-lite0"))
    seconds_file = OUT / "seconds.json"
    seconds = json.loads(seconds_file.read_text()) if seconds_file.is_file() else {}
    for name, run in METHODS.items():
        if args.only and args.only not in name:
            continue
        folder = OUT / name
        todo = [i for i in idx if not (folder / f"target_{i:04d}.png").is_file()]
        for k in range(0, len(todo), args.batch):
            part = todo[k:k + args.batch]
            start = time.process_time()
            pixels = run(loaded, part)
            per_image = (time.process_time() - start) / len(part)
            for i, img in zip(part, pixels, strict=True):
                img = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
                img = np.asarray(Image.fromarray(img).resize((SIDE, SIDE), Image.LANCZOS))
                write_png(folder / f"target_{i:04d}.png", img)
            seconds.setdefault(name, []).extend([round(per_image, 1)] * len(part))
            seconds_file.write_text(json.dumps(seconds, indent=1))
            print(f"{name}: {len(part)} images, {per_image:.0f} CPU s each", flush=True)


if __name__ == "__main__":
    main()
