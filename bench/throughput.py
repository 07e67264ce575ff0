"""Throughput of the render engine against the two ways people do this today, in one process.

Same work for all: VGG16 (hed weights) up to block5_conv1, 16 filters, 128 px, gradient ascent
from gray noise with RMS-normalized gradients and no regularizer.

- engine: ``vissearch.engine.render`` (one compiled step for the batch of 16);
- per-image eager: the Keras example's loop, one filter at a time, a GradientTape per step;
- tf-keras-vis: ``ActivationMaximization`` on a batch of 16, with no regularizers or input
  modifiers (same work), and with its default Jitter/Rotate/TV/Norm for reference.

Each method runs a short and a long render; the difference, divided by the extra image-steps, is
the steady-state cost per image-step (compilation cancels out). Repetitions are interleaved and
the fastest kept, because this machine is shared and noisy. Prints the ratios.

    python bench/throughput.py [--reps 2] [--filters 16] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vissearch.engine.render import render  # noqa: E402
from vissearch.models import resolve as models  # noqa: E402
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

LAYER = "block5_conv1"


def engine(loaded, filters, size, steps):
    s = RenderSettings(size=size, steps=steps, lr=1.0, clip=False, batch_size=len(filters))
    render(loaded, TargetSpec(kind="filter", layer=LAYER, indices=filters), s)


def per_image_eager(extractor, filters, size, steps):
    rng = np.random.default_rng(0)
    for f in filters:
        x = tf.Variable(rng.uniform(-10, 10, (1, size, size, 3)).astype(np.float32))
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(extractor(x, training=False)[..., f])
            grad = tape.gradient(loss, x)
            grad = grad / (tf.sqrt(tf.reduce_mean(tf.square(grad))) + 1e-7)
            x.assign_add(grad)


def tf_keras_vis(am, filters, size, steps, defaults=False):
    from tf_keras_vis.utils.scores import CategoricalScore

    seed = np.random.default_rng(0).uniform(-10, 10, (len(filters), size, size, 3))
    kwargs = {} if defaults else {"input_modifiers": [], "regularizers": []}
    am(CategoricalScore(list(filters)), seed_input=seed.astype(np.float32), steps=steps,
       optimizer=keras.optimizers.SGD(1.0), **kwargs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    filters = list(range(args.filters))
    loaded = models.load(ModelSpec(name="VGG16", weights="hed"), with_classifier=False)
    extractor = keras.Model(loaded.model.inputs, loaded.model.get_layer(LAYER).output)
    methods = {
        "engine": (lambda n: engine(loaded, filters, args.size, n), (3, 13)),
        "per-image eager": (lambda n: per_image_eager(extractor, filters, args.size, n), (2, 6)),
    }
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer

        am = ActivationMaximization(loaded.model, [ExtractIntermediateLayer(LAYER)], clone=True)
        methods["tf-keras-vis"] = (lambda n: tf_keras_vis(am, filters, args.size, n), (3, 13))
        methods["tf-keras-vis, its defaults"] = (
            lambda n: tf_keras_vis(am, filters, args.size, n, defaults=True), (3, 13))
    except ImportError:
        print("tf-keras-vis is not installed: pip install -e '.[bench]' to compare with it")

    best: dict[tuple[str, int], float] = {}
    for rep in range(args.reps):
        for name, (fn, counts) in methods.items():
            for n in counts:
                start = time.perf_counter()
                fn(n)
                took = time.perf_counter() - start
                key = (name, n)
                best[key] = min(best.get(key, np.inf), took)
                print(f"rep {rep} {name:<28} {n:>3} steps: {took:7.2f} s", flush=True)

    print(f"\nVGG16 to {LAYER}, {len(filters)} filters, {args.size} px; "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} threads")
    per_step = {}
    for name, (_, (short, long)) in methods.items():
        extra = (long - short) * len(filters)
        per_step[name] = (best[(name, long)] - best[(name, short)]) / extra
    base = per_step["engine"]
    for name, cost in per_step.items():
        print(f"{name:<28} {cost * 1000:7.1f} ms per image-step   "
              f"{1 / cost:6.2f} image-steps/s   engine speed-up x{cost / base:.2f}")


if __name__ == "__main__":
    main()
