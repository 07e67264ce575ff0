"""Search more per CPU-hour: populations and successive halving, measured side by side.

1. Throughput, trial-images per second: the same K trials (settings drawn from the config's
   space) rendered one at a time (``render``) against together as one population
   (``render_population``), in one process, repetitions interleaved, fastest kept. Workloads:
   the quickstart (zoo/shapes, 11 classes, 64 px, 160 steps, the blog's space) and VGG16 (hed
   weights) block3_conv1 filters at 64 px.
2. Search efficiency: the best judge transfer reached as a function of image-steps spent, plain
   random search (one trial at a time, no halving, 50 trials) against population + successive
   halving on the same config, three study seeds. A pruned trial counts the image-steps it ran;
   only completed trials can be the best. Writes docs/search_efficiency.png. Each arm's wall
   time gives trials per hour, study overhead and judging included.
3. Memory: peak resident memory of one ``auto`` population per workload, in a fresh process.

    pip install -e ".[bench]"; python bench/search.py [--part 1 2 3] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from vissearch import runconfig, runner  # noqa: E402
from vissearch.engine import budget
from vissearch.engine.render import Member, render, render_population  # noqa: E402
from vissearch.models import resolve as models

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "configs/quickstart.yaml"
VGG_BLOCK3 = {
    "study": {"name": "bench-vgg-block3"},
    "model": {"name": "VGG16", "weights": "hed"},
    "target": {"kind": "filter", "layer": "block3_conv1", "indices": {"start": 0, "stop": 16}},
    "render": {"size": 64, "steps": 100},
    "search": "tence2016",
}
SEEDS = (1, 2, 3)
PLAIN_TRIALS = 50


def drawn(cfg: runconfig.RunConfig, k: int, seed: int = 0) -> list:
    """``k`` trials' settings drawn from the config's space, as a study would draw them."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for i in range(k):
        trial = study.ask()
        out.append(cfg.settings(cfg.space.suggest(trial, cfg.fixed), seed=1000 + i))
    return out


def throughput(cfg: runconfig.RunConfig, label: str, k: int, reps: int) -> dict:
    loaded = models.load_for(cfg.model, cfg.target)
    settings = drawn(cfg, k)
    images = k * len(cfg.target.indices)
    render(loaded, cfg.target, settings[0].model_copy(update={"steps": 2}))  # trace once
    render_population(loaded, cfg.target, [Member(s.model_copy(update={"steps": 2}))
                                           for s in settings])
    best = {"one at a time": np.inf, f"population of {k}": np.inf}
    for rep in range(reps):
        start = time.perf_counter()
        for s in settings:
            render(loaded, cfg.target, s)
        best["one at a time"] = min(best["one at a time"], time.perf_counter() - start)
        start = time.perf_counter()
        render_population(loaded, cfg.target, [Member(s) for s in settings])
        best[f"population of {k}"] = min(best[f"population of {k}"], time.perf_counter() - start)
        print(f"  rep {rep}: " + ", ".join(f"{m} {v:.1f} s" for m, v in best.items()), flush=True)
    base = best["one at a time"]
    print(f"{label}: {k} trials x {len(cfg.target.indices)} targets, {settings[0].steps} steps")
    for mode, seconds in best.items():
        print(f"  {mode:<22} {seconds:8.1f} s  {images / seconds:7.2f} trial-images/s  "
              f"x{base / seconds:.2f}")
    return best


def search_curve(cfg: runconfig.RunConfig) -> list[tuple[int, float]]:
    """(image-steps spent so far, best completed transfer so far) after each trial.

    Also prints the study's wall time and trials per hour (judging and records included)."""
    start = time.perf_counter()
    study = runner.run(cfg, progress=False)
    seconds = time.perf_counter() - start
    print(f"  {cfg.study.name}: {cfg.study.n_trials} trials in {seconds:.0f} s, "
          f"{3600 * cfg.study.n_trials / seconds:.0f} trials/hour", flush=True)
    n = len(cfg.target.indices)
    spent, best, out = 0, -np.inf, []
    for t in sorted(study.get_trials(), key=lambda t: t.number):
        spent += int(t.user_attrs.get("steps_run", 0)) * n
        if t.state == optuna.trial.TrialState.COMPLETE:
            best = max(best, t.values[0])
        out.append((spent, best))
    return out


def arm(base: dict, name: str, seed: int, results: str, **study) -> runconfig.RunConfig:
    raw = json.loads(json.dumps(base))
    raw["study"].update(name=f"{name}-{seed}", seed=seed, results=results, **study)
    return runconfig.from_mapping(raw, str(QUICKSTART))


def efficiency() -> None:
    base = runconfig.load(str(QUICKSTART)).raw
    curves: dict[str, list] = {"plain": [], "halving": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in SEEDS:
            plain = arm(base, "plain", seed, tmp, n_trials=PLAIN_TRIALS, population=1,
                        halving=None)
            curves["plain"].append(search_curve(plain))
            budget_steps = curves["plain"][-1][-1][0]
            halved = arm(base, "halving", seed, tmp, n_trials=4 * PLAIN_TRIALS,
                         population="auto", halving={"rungs": [0.125, 0.25, 0.5], "keep": 0.5})
            curve = [p for p in search_curve(halved) if p[0] <= budget_steps]
            curves["halving"].append(curve)
            report_seed(seed, curves["plain"][-1], curve)
    plot(curves)


def report_seed(seed: int, plain: list, halved: list) -> None:
    target = plain[-1][1]
    reached = next((s for s, b in halved if b >= target), None)
    share = f"{reached / plain[-1][0]:.2f}" if reached else "not reached"
    print(f"seed {seed}: plain best {target:.3f} after {len(plain)} trials, "
          f"{plain[-1][0]:,} image-steps; population + halving best {halved[-1][1]:.3f} after "
          f"{len(halved)} trials; reached the plain best at {share} of its image-steps")


def plot(curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, runs), colour in zip(curves.items(), ("tab:gray", "tab:blue"), strict=True):
        for i, run in enumerate(runs):
            xs, ys = zip(*[(s / 1e6, b) for s, b in run if np.isfinite(b)], strict=True)
            ax.step(xs, ys, where="post", color=colour, alpha=0.8,
                    label=name if i == 0 else None)
    ax.set_xlabel("image-steps spent (millions)")
    ax.set_ylabel("best judge transfer (completed trials)")
    ax.set_title("quickstart: plain random search vs population + halving, 3 seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(ROOT / "docs/search_efficiency.png", dpi=110)


def memory() -> None:
    for label, source in (("quickstart", str(QUICKSTART)), ("VGG16 block3 64 px", VGG_BLOCK3),
                          ("imagenet_classes", str(ROOT / "configs/imagenet_classes.yaml"))):
        code = (f"import json; from bench.search import peak; "
                f"print(json.dumps(peak({source!r})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout.strip().splitlines()[-1]
        print(f"{label}: {out}")


def high_water_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries that over
    from the parent across fork and exec, so a fresh child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak(source) -> dict:
    """Run one ``auto`` population of ``source`` for 10 steps; the process's peak memory."""
    cfg = runconfig.load(source) if isinstance(source, str) else runconfig.from_mapping(source)
    loaded = models.load_for(cfg.model, cfg.target)
    auto = cfg.study.model_copy(update={"population": "auto"})
    k = budget.population(runconfig.RunConfig(**{**cfg.__dict__, "study": auto}), loaded)
    before = high_water_mb()
    settings = [s.model_copy(update={"steps": 10}) for s in drawn(cfg, k)]
    render_population(loaded, cfg.target, [Member(s) for s in settings])
    after = high_water_mb()
    return {"population": k, "images": k * len(cfg.target.indices),
            "estimate_MB_per_image": round(budget.bytes_per_image(
                loaded, cfg.target, settings[0].size) / 2**20, 1),
            "peak_MB_before": round(before), "peak_MB_after": round(after),
            "measured_MB_per_image": round((after - before) / (k * len(cfg.target.indices)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    print(f"TensorFlow threads: {os.cpu_count()} cores", flush=True)
    if 1 in args.part:
        throughput(runconfig.load(str(QUICKSTART)), "quickstart", 32, args.reps)
        throughput(runconfig.from_mapping(VGG_BLOCK3, str(QUICKSTART)), "VGG16 block3 64 px",
                   8, args.reps)
    if 2 in args.part:
        efficiency()
    if 3 in args.part:
        memory()


if __name__ == "__main__":
    main()
