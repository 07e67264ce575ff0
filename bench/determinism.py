"""What a crop gradient that is the same on every run costs the Lite0 class entry.

On a machine with more than one core, TensorFlow's CPU gradient of ``crop_and_resize`` adds
the crops of one image into its gradient from several threads at once, in an order that changes
from run to run: the same MaCo render with the same seed gave images up to 0.75 apart in input
space (of a range of 2) after 8 steps, and wholly different images after 128. The engine now
crops with :func:`vissearch.engine.transforms.crop_and_resize`: TensorFlow's forward and a
gradient summed by ``unsorted_segment_sum``, the same bits as TensorFlow's on one thread.

This renders the shipped Lite0 class entry (one class, ``--steps`` steps) in fresh processes,
each way in turn (``--rounds`` each), using every core: ``tensorflow`` (TensorFlow's own crop
gradient, as the engine ran before), ``engine`` (as it runs now) and ``op-determinism``
(TensorFlow's gradient with ``tf.config.experimental.enable_op_determinism``, which makes it
single-threaded; with it XLA refuses max pooling's gradient, so the engine cannot turn it on).
Per process: wall and CPU seconds of a render (after a first, untimed render that compiles),
and whether two renders in the process were identical.

    python bench/determinism.py [--steps 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

WAYS = ("tensorflow", "engine", "op-determinism")

CHILD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
import numpy as np
from vissearch import recipes
from vissearch.engine import transforms
from vissearch.engine.render import render
from vissearch.models import resolve
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec
if sys.argv[1] != "engine":
    transforms.crop_and_resize = lambda i, b, k, s: tf.image.crop_and_resize(
        i, b, tf.repeat(tf.range(tf.shape(i)[0]), k), [s, s])
if sys.argv[1] == "op-determinism":
    tf.config.experimental.enable_op_determinism()
loaded = resolve.load(ModelSpec(name="zoo/efficientnet-lite0"))
target = TargetSpec(kind="class", indices=[19])
entry, _ = recipes.lookup(recipes.load(recipes.find("efficientnet-lite0")), target)
s = RenderSettings(**{**entry.render, "steps": int(sys.argv[2]), "seed": 7})
first = render(loaded, target, s)
wall, cpu = time.perf_counter(), time.process_time()
second = render(loaded, target, s)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "same": bool(np.array_equal(first.inputs, second.inputs)),
                  "inputs": float(np.abs(second.inputs).sum())}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:
            out = subprocess.run([sys.executable, "-c", CHILD, way, str(args.steps)],
                                 capture_output=True, text=True, check=True)
            runs[way].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(way, runs[way][-1], flush=True)
    base = {k: statistics.median(r[k] for r in runs["tensorflow"]) for k in ("wall", "cpu")}
    print(f"median of {args.rounds}, ratios against TensorFlow's own gradient:")
    for way, rs in runs.items():
        wall, cpu = (statistics.median(r[k] for r in rs) for k in ("wall", "cpu"))
        print(f"  {way:15s} wall {wall:5.1f} s (x{wall / base['wall']:.2f})  CPU {cpu:5.1f} s "
              f"(x{cpu / base['cpu']:.2f})  identical twice in a process "
              f"{sum(r['same'] for r in rs)}/{len(rs)}")


if __name__ == "__main__":
    main()
