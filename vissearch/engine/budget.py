"""How many trials render together: ``study.population`` as a number of trials.

``auto`` fills a memory budget: :data:`MEMORY_BUDGET` bytes of forward activations, estimated
from the traced graph of the target's objective (the float tensors of a batch of two less those
of a batch of one, so the weights cancel), divided by the trial's targets and the crops the
model sees of each. Where a GPU is present the budget is half its free memory as the driver
reports it, at most :data:`MAX_POPULATION_GPU` trials; on a CPU at most
:data:`MAX_POPULATION` trials.

The estimate is rough: on 2 CPU cores the peak resident memory of an ``auto`` population grew
by 2.3 MB per image on zoo/shapes at 64 px (estimate 1.6 MB), 48 MB on EfficientNet-Lite0 at
224 px (estimate 102 MB) and 5.4 MB on VGG16 up to block3_conv1 at 64 px (estimate 10 MB):
TensorFlow frees or fuses much of what the graph holds (bench/search.py, docs/bench.md).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from vissearch.engine import objectives, step
from vissearch.models.loaded import LoadedModel
from vissearch.settings.config import TargetSpec

MEMORY_BUDGET = 2 * 2**30  # bytes of estimated forward activations a population may hold
MAX_POPULATION = 32  # trials per batch; the halving rungs need a few, a CPU gains little more
GPU_SHARE = 0.5  # of a GPU's free memory, for the estimated activations (the rest: TF's own)
MAX_POPULATION_GPU = 256

_CACHE: dict[tuple, int] = {}


def population(size: int | str, fixed: Mapping[str, Any], target: TargetSpec,
               loaded: LoadedModel) -> int:
    """The population size of a run: ``size`` (``study.population``) as configured, or the
    ``auto`` estimate for the run's fixed settings (``size``, ``crops``) and target."""
    if size != "auto":
        return int(size)
    side = int(fixed.get("size", 128))
    views = max(1, int(fixed.get("crops", 0)))  # the model sees each crop
    per_trial = len(target.indices) * views * bytes_per_image(loaded, target, side)
    free = gpu_free_bytes()
    budget, most = ((MEMORY_BUDGET, MAX_POPULATION) if free is None else
                    (int(free * GPU_SHARE), MAX_POPULATION_GPU))
    return max(1, min(most, int(budget // per_trial)))


def gpu_free_bytes() -> int | None:
    """Free memory of the first GPU as its driver reports it (``nvidia-smi``), or None without
    a GPU (or without a way to ask)."""
    if not tf.config.list_physical_devices("GPU"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,"
                              "nounits", "-i", "0"], capture_output=True, text=True, timeout=10,
                             check=True).stdout
        return int(float(out.split()[0]) * 2**20)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def bytes_per_image(loaded: LoadedModel, target: TargetSpec, side: int) -> int:
    """Bytes of float tensors one more image adds to the traced forward pass of the target."""
    key = (id(loaded.model), target.kind, target.layer, side)
    if key not in _CACHE:
        one, two = (_traced_bytes(loaded, target, side, b) for b in (1, 2))
        _CACHE[key] = max(two - one, 1)
    return _CACHE[key]


def _traced_bytes(loaded: LoadedModel, target: TargetSpec, side: int, batch: int) -> int:
    goal = step.objective_of(loaded, target.model_copy(update={"indices": [0]}))[0]

    @tf.function
    def forward(x, idx):
        return goal(objectives.Batch(x, x, idx, {}, loaded.preprocess))

    spec = (tf.TensorSpec([batch, side, side, 3]), tf.TensorSpec([batch], tf.int32))
    graph = forward.get_concrete_function(*spec).graph
    return sum(t.shape.num_elements() * t.dtype.size for op in graph.get_operations()
               for t in op.outputs if t.dtype.is_floating and t.shape.is_fully_defined())
