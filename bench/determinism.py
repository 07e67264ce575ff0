"""What TensorFlow's op determinism costs the Lite0 class entry, and whether it is needed.

On a machine with more than one core, TensorFlow's CPU gradient of ``crop_and_resize`` adds
the crops of one image into its gradient from several threads, in an order that changes from
run to run: the same MaCo render with the same seed gave images up to 0.75 apart in input
space (of a range of 2) after 8 steps, and wholly different images after 128. Op determinism
makes that gradient single-threaded. The engine does not turn it on (with it, XLA refuses the
gradient of max pooling, so ``jit: true`` on VGG16 fails); a user who needs crops renders
reproduced bit for bit on several cores sets ``TF_DETERMINISTIC_OPS=1`` (README). This renders
the shipped Lite0 class entry (one class, ``--steps`` steps) in fresh processes, with
determinism on and off in turn (``--rounds`` each), using every core, and reports per process:
wall and CPU seconds of the render (after a first, untimed render that compiles), and whether
two renders in the process were identical.

    python bench/determinism.py [--steps 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
if sys.argv[1] == "on":
    tf.config.experimental.enable_op_determinism()
import numpy as np
from vissearch import recipes
from vissearch.engine.render import render
from vissearch.models import resolve
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec
loaded = resolve.load(ModelSpec(name="zoo/efficientnet-lite0"))
target = TargetSpec(kind="class", indices=[19])
entry, _ = recipes.lookup(recipes.load(recipes.find("efficientnet-lite0")), target)
s = RenderSettings(**{**entry.render, "steps": int(sys.argv[2]), "seed": 7})
first = render(loaded, target, s)
wall, cpu = time.perf_counter(), time.process_time()
second = render(loaded, target, s)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "same": bool(np.array_equal(first.inputs, second.inputs))}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(args.steps)],
                                 capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(mode, runs[mode][-1], flush=True)
    wall = {m: statistics.median(r["wall"] for r in v) for m, v in runs.items()}
    cpu = {m: statistics.median(r["cpu"] for r in v) for m, v in runs.items()}
    print(f"determinism on / off, median of {args.rounds}: wall {wall['on']:.1f} / "
          f"{wall['off']:.1f} s (x{wall['on'] / wall['off']:.2f}), CPU {cpu['on']:.1f} / "
          f"{cpu['off']:.1f} s (x{cpu['on'] / cpu['off']:.2f}); identical twice in a process: "
          f"on {sum(r['same'] for r in runs['on'])}/{args.rounds}, "
          f"off {sum(r['same'] for r in runs['off'])}/{args.rounds}")


if __name__ == "__main__":
    main()
