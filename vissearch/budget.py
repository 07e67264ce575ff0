"""How many trials render together: ``study.population`` as a number of trials.

``auto`` fills a memory budget: the activations that one image's forward and backward pass
keep, estimated from the traced graph of the target's objective (the float tensors of a batch of
two less those of a batch of one, so the weights cancel), times the trial's targets, times a
safety factor measured against peak memory in bench/search.py.
"""

from __future__ import annotations

import tensorflow as tf

from vissearch import objectives, step
from vissearch.config import TargetSpec
from vissearch.loaded import LoadedModel
from vissearch.runconfig import RunConfig

MEMORY_BUDGET = 2 * 2**30  # bytes of activations a population may hold
SAFETY = 2.0  # peak memory over the traced estimate (measured; see docs/bench.md)
MAX_POPULATION = 32  # more trials than this per batch gain nothing on a CPU


def population(cfg: RunConfig, loaded: LoadedModel) -> int:
    """The population size of a run: the configured number, or the ``auto`` estimate."""
    size = cfg.study.population
    if size != "auto":
        return int(size)
    side = int(cfg.fixed.get("size", 128))
    per_trial = len(cfg.target.indices) * bytes_per_image(loaded, cfg.target, side) * SAFETY
    return max(1, min(MAX_POPULATION, int(MEMORY_BUDGET // max(per_trial, 1))))


def _traced_bytes(loaded: LoadedModel, target: TargetSpec, side: int, batch: int) -> int:
    goal = step.objective_of(loaded, target.model_copy(update={"indices": [0]}))[0]

    @tf.function
    def ascend(x, idx):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(goal(objectives.Batch(x, x, idx, {}, loaded.preprocess)))
        return tape.gradient(value, x)

    spec = (tf.TensorSpec([batch, side, side, 3]), tf.TensorSpec([batch], tf.int32))
    graph = ascend.get_concrete_function(*spec).graph
    return sum(t.shape.num_elements() * t.dtype.size for op in graph.get_operations()
               for t in op.outputs if t.dtype.is_floating and t.shape.is_fully_defined())


def bytes_per_image(loaded: LoadedModel, target: TargetSpec, side: int) -> int:
    """Bytes of float tensors one more image adds to a traced forward and backward pass."""
    key = (id(loaded.model), target.kind, target.layer, side)
    if key not in _CACHE:
        _CACHE[key] = max(_traced_bytes(loaded, target, side, 2)
                          - _traced_bytes(loaded, target, side, 1), 1)
    return _CACHE[key]


_CACHE: dict[tuple, int] = {}
