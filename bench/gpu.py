"""The headline job's speed: populations, mixed precision and XLA, measured in one run.

For each workload, population size (trials rendered as one batch), precision and jit setting,
the same K trials (4 classes each, learning rates spread so that no two are alike) render a
short run and a longer run; the cost of a step is (long - short) / extra steps, so tracing and
compilation cancel out. Printed as a table of image-steps per second and trials per hour (a
1000-step, 4-class trial, as configs/vgg16_classes.yaml runs them) with the speed-ups against
population 1, float32, no jit of the same workload, and written to docs/bench.md between the
``gpu.py`` markers.

Workloads: zoo/efficientnet-lite0 at 224 px (classes) and VGG16 with its classifier at 224 px
(``weights: none``: timing needs no weights, and none can be downloaded on a GPU machine here).
``--smoke`` runs zoo/shapes (a small CNN) at 32 px for 1 and 3 steps, population 1, as
float32, mixed and float32 with jit (three rows), so that the tests exercise the whole script
on a CPU in seconds; its timings say nothing about the workloads.

    python bench/gpu.py                       # on a GPU machine
    python bench/gpu.py --smoke --out /tmp/gpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from vissearch.engine import budget  # noqa: E402
from vissearch.engine.render import Member, render_population  # noqa: E402
from vissearch.errors import UserError  # noqa: E402
from vissearch.models import resolve as models
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLASSES = [130, 351, 736, 850]  # the blog's four
TRIAL_STEPS = 1000  # the trial of the trials-per-hour column
BEGIN, END = "<!-- gpu.py: begin -->", "<!-- gpu.py: end -->"
WORKLOADS = {  # label: (model, image size, classes)
    "Lite0 224 px": (ModelSpec(name="zoo/efficientnet-lite0"), 224, CLASSES),
    "VGG16 224 px": (ModelSpec(name="VGG16", weights="none"), 224, CLASSES),
}
SMOKE = {"shapes 32 px": (ModelSpec(name="zoo/shapes"), 32, [0, 1, 2, 3])}  # compiles in seconds


def device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"{details.get('device_name', 'GPU')} ({len(gpus)} GPU)"


def step_seconds(loaded, size: int, classes: list[int], k: int, precision: str, jit: bool,
                 short: int, long: int) -> float:
    """Seconds per step of a population of ``k`` trials (long run minus short run)."""
    target = TargetSpec(kind="class", indices=classes)

    def run(steps: int) -> float:
        members = [Member(RenderSettings(size=size, steps=steps, lr=1.0 + 0.1 * i, seed=i,
                                         precision=precision, jit=jit, batch_size=4096))
                   for i in range(k)]
        start = time.perf_counter()
        render_population(loaded, target, members)
        return time.perf_counter() - start

    run(short)  # trace and compile this structure once
    return max(run(long) - run(short), 1e-9) / (long - short)


def cases(smoke: bool, auto: int | None) -> list[tuple[str, bool, int]]:
    """(precision, jit, population) in the order measured. The smoke run times population 1
    three ways (float32, mixed, float32 with jit): every code path once, seconds on a CPU."""
    if smoke:
        return [("float32", False, 1), ("mixed", False, 1), ("float32", True, 1)]
    populations = sorted({1, 4, 16, 64, auto or 1})
    return [(p, j, k) for p in ("float32", "mixed") for j in (False, True) for k in populations]


def measure(args) -> list[dict]:
    rows = []
    for label, (spec, size, classes) in (SMOKE if args.smoke else WORKLOADS).items():
        loaded = models.load(spec)
        auto = None if args.smoke else _auto(loaded, size)
        base = None
        for precision, jit, k in cases(args.smoke, auto):
            try:
                sec = step_seconds(loaded, size, classes, k, precision, jit, args.short,
                                   args.long)
            except (UserError, tf.errors.OpError, MemoryError) as err:
                print(f"{label} K={k} {precision} jit={jit}: {err}"[:300], flush=True)
                continue
            row = {"workload": label, "population": k, "auto": k == auto,
                   "precision": precision, "jit": jit, "step_s": sec,
                   "image_steps_s": k * len(classes) / sec,
                   "trials_h": 3600.0 * k / (sec * TRIAL_STEPS)}
            base = row if base is None or base["workload"] != label else base
            row["speedup"] = row["trials_h"] / base["trials_h"]
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def _auto(loaded, size: int) -> int:
    from types import SimpleNamespace

    cfg = SimpleNamespace(study=SimpleNamespace(population="auto"), fixed={"size": size},
                          target=TargetSpec(kind="class", indices=CLASSES))
    return budget.population(cfg, loaded)


HEADER = ("| workload | population | precision | jit | s per step | image-steps/s | "
          "trials/hour (1000 steps, 4 classes) | × population 1, float32, no jit |")


def format_row(r: dict) -> str:
    k = f"{r['population']} (auto)" if r["auto"] else str(r["population"])
    return (f"| {r['workload']} | {k} | {r['precision']} | {'on' if r['jit'] else 'off'} | "
            f"{r['step_s']:.3f} | {r['image_steps_s']:.1f} | {r['trials_h']:.1f} | "
            f"×{r['speedup']:.2f} |")


def table(rows: list[dict], args) -> str:
    one = [r for r in rows if r["population"] == 1 and r["precision"] == "float32"
           and not r["jit"] and r["workload"].startswith("VGG16")]
    lines = [f"Device: {device()}. Steps {args.short} and {args.long}, "
             f"{time.strftime('%Y-%m-%d')}.", "", HEADER, "|---" * 8 + "|",
             *map(format_row, rows)]
    if one:
        trial = one[0]["step_s"] * TRIAL_STEPS
        lines += ["", f"A 1000-step, 4-class VGG16 trial alone (population 1, float32, no jit): "
                      f"{trial:.0f} s."]
    return "\n".join(lines)


def write(text: str, path: Path) -> None:
    """Replace the text between the markers in ``path`` (or append it with them)."""
    old = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in old and END in old:
        new = old.split(BEGIN)[0] + block + old.split(END, 1)[1]
    else:
        new = old + ("\n" if old else "") + "# GPU: `python bench/gpu.py`\n\n" + block + "\n"
    path.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="small and short, on any machine")
    ap.add_argument("--short", type=int, default=None)
    ap.add_argument("--long", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs/bench.md")
    args = ap.parse_args()
    args.short = args.short or (1 if args.smoke else 10)
    args.long = args.long or (3 if args.smoke else 40)
    rows = measure(args)
    text = table(rows, args)
    print(text)
    write(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
