"""Does a warm start help? Trials to reach a cold search's best, with and without one.

For each seed: a source study on one layer, then two studies on the next layer with the same
seed and budget, one cold (the sampler alone) and one warm-started from the source's best
trials (``study.warm_start``). Trials run one at a time (population 1, no halving), so a trial's
number is when it ran. Printed and written as a Markdown table:

    python experiments/warm_start.py --out docs/recipes/warm_start.md
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from vissearch import quiet

CASES = {  # name: (model, source layer, target layer, render, space)
    "shapes conv2 -> conv3": ("zoo/shapes", "conv2", "conv3", {"size": 48, "steps": 64},
                              "tence2016"),
    "lite0 block4_out -> block6_out": ("zoo/efficientnet-lite0", "block4_out", "block6_out",
                                       {"size": 96, "steps": 96}, "lucid"),
}


def config(name, model, layer, render, space, seed, n_trials, results, warm=None):
    study = {"name": name, "sampler": "random", "seed": seed, "n_trials": n_trials,
             "objective": "readable_robustness", "results": results}
    if warm:
        study["warm_start"] = {"study": warm, "top": 3, "results": results}
    return {"study": study, "model": {"name": model},
            "target": {"kind": "filter", "layer": layer, "indices": {"stop": 4}},
            "render": render, "search": space}


def values(study) -> list[float]:
    """Each trial's objective in the order the trials ran (-inf where it did not complete)."""
    return [t.values[0] if t.values else -math.inf for t in study.get_trials()]


def reach(series: list[float], target: float) -> int | None:
    """1-based count of trials until the running best reaches ``target``; None if never."""
    best = np.maximum.accumulate(np.asarray(series))
    hits = np.flatnonzero(best >= target - 1e-12)
    return int(hits[0]) + 1 if hits.size else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--cases", nargs="*", default=list(CASES))
    p.add_argument("--results", default="results/warm-start")
    p.add_argument("--out", default="docs/recipes/warm_start.md")
    args = p.parse_args()
    quiet.import_tensorflow(False)
    from vissearch import runconfig, runner

    rows = []
    for case in args.cases:
        model, src, dst, render, space = CASES[case]
        tag = model.split("/")[-1]
        for seed in range(1, args.seeds + 1):
            run = {}
            for kind, layer, warm in (("source", src, None), ("cold", dst, None),
                                      ("warm", dst, f"{tag}-source-{seed}")):
                # the source draws apart from the cold and warm studies (which share a seed)
                drawn = seed + 100 if kind == "source" else seed
                raw = config(f"{tag}-{kind}-{seed}", model, layer, render, space, drawn,
                             args.trials, args.results, warm)
                run[kind] = values(runner.run(runconfig.from_mapping(raw), progress=False))
            target = max(run["cold"])
            rows.append({"case": case, "seed": seed, "cold best": target,
                         "cold: trials to it": reach(run["cold"], target),
                         "warm: trials to it": reach(run["warm"], target),
                         "warm best": max(run["warm"]),
                         "cold best of 3": max(run["cold"][:3]),
                         "warm best of 3": max(run["warm"][:3])})
            print(rows[-1], flush=True)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    for r in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else
                 (f"not in {args.trials}" if v is None else str(v)) for v in r.values()]
        lines.append("| " + " | ".join(cells) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
