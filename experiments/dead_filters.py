"""How many VGG16 block5_conv1 filters stay dead (activation exactly 0 at every step)?

Naive ascent as in the Keras example (gray 128 +- 10, RMS-normalized steps of 1, no
regularizer) against the best settings of a short random search that minimizes dead filters
(experiments/vgg16_filters_search.yaml), both on filters 0..63 at 64 px, 40 steps, on the hed
VGG16 conv stack. The search saw filters 0..15 only. Writes docs/dead_filters.md and grids.

    python experiments/dead_filters.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from vissearch import runconfig, runner  # noqa: E402
from vissearch.engine.render import render  # noqa: E402
from vissearch.imageio import write_png  # noqa: E402
from vissearch.models import resolve as models
from vissearch.settings.config import RenderSettings, TargetSpec  # noqa: E402
from vissearch.study import store

ROOT = Path(__file__).resolve().parent.parent
NAIVE = dict(lr=1.0, normalize_grad=True, clip=False, init="uniform", optimizer="sgd")


def main() -> None:
    cfg = runconfig.load(str(ROOT / "experiments/vgg16_filters_search.yaml"))
    best = store.find_trial(runner.run(cfg), "best")
    searched = {k: v for k, v in best.user_attrs["settings"].items() if k != "seed"}
    loaded = models.load(cfg.model, with_classifier=False)
    target = TargetSpec(kind="filter", layer="block5_conv1", indices=list(range(64)))
    lines = ["# Dead filters of VGG16 block5_conv1 (hed weights)", "",
             "Filters 0..63, 64 px, 40 steps, seed 5; dead = activation exactly 0 at every step. "
             "Produced by `python experiments/dead_filters.py`.", "",
             "| settings | dead filters | mean final activation |", "|---|---|---|"]
    for name, settings in (("naive ascent (Keras example)", NAIVE),
                           (f"best of {cfg.study.n_trials} random-search trials", searched)):
        s = RenderSettings(**{**settings, "size": 64, "steps": 40, "seed": 5, "batch_size": 16,
                              "png": "keras", "png_std": 0.1, "grid": 8})
        result = render(loaded, target, s)
        slug = "naive" if name.startswith("naive") else "searched"
        write_png(ROOT / f"docs/dead_filters_{slug}.png", result.grid_image())
        alive = result.activations[~result.dead]
        lines.append(f"| {name} | {int(result.dead.sum())} of 64 | "
                     f"{alive.mean() if alive.size else 0:.3g} |")
        print(name, int(result.dead.sum()), flush=True)
    lines += ["", "Grids, live filters first by activation (Keras deprocessing, std 0.1): "
              "naive ![naive](dead_filters_naive.png) searched "
              "![searched](dead_filters_searched.png)", "",
              f"Searched settings (trial #{best.number}, objectives "
              f"{[round(v, 3) for v in best.values]}):", "", "```json",
              json.dumps(searched, indent=1, sort_keys=True), "```"]
    (ROOT / "docs/dead_filters.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
