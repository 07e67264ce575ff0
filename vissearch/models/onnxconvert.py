"""Convert an ONNX image model (a PyTorch export) to a Keras model, checked against onnxruntime.

``(MODEL.onnx) => Converted`` (a channels-last ``keras.Model`` of real layers, named after the
PyTorch modules, and the largest difference from onnxruntime on random inputs).

The converter is onnx2keras 0.0.25 (``pip install --no-deps onnx2keras``): it builds a Keras 3
functional model of ordinary layers (Conv2D, BatchNormalization, Add, ...), so every layer is a
target, and with ``change_ordering`` it moves NCHW to NHWC, weights included. Two of its
converters are replaced here, because they leave ``Lambda`` layers (code that a saved model
cannot reload safely): ``GlobalAveragePool`` keeps its dims as a plain pooling layer, and a
``Flatten`` of a 1x1 map is a plain ``Flatten``. onnx2tf writes Keras 2 ``TFOpLambda`` layers
that Keras 3 cannot load, and it downloads a file while it converts.

Needs ``onnx``, ``onnxruntime`` and ``onnx2keras`` (``pip install vissearch[torch]``), imported
when a conversion runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vissearch.errors import UserError
from vissearch.models import onnxnames

TOLERANCE = 1e-3  # largest |keras - onnxruntime| on a logit accepted; float32 runs to ~1e-5
SAMPLES = 4
MAX_BYTES = 2 * 1024**3  # protobuf's own limit for one file
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass
class Converted:
    """A conversion's result.

    Attributes:
        model: the Keras model (input NHWC, any size unless ``fixed_size``).
        source: the ONNX file.
        size: the input side the file was exported at (the check runs at it).
        fixed_size: the one side the Keras model accepts, or None for any.
        difference: the largest absolute difference from onnxruntime over all outputs.
        seconds: the conversion's time, the check excluded.
        original: layer name -> the ONNX node it came from.
    """

    model: Any
    source: Path
    size: int
    fixed_size: int | None
    difference: float = float("nan")
    seconds: float = 0.0
    original: dict[str, str] = field(default_factory=dict)

    @property
    def lambdas(self) -> list[str]:
        import keras

        return [layer.name for layer in self.model.layers
                if isinstance(layer, keras.layers.Lambda)]


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        pip = {"onnx2keras": "pip install --no-deps onnx2keras==0.0.25"}.get(
            module, f"pip install {module}")
        raise UserError(f"converting an ONNX model needs the package {module}: {pip} "
                        "(or pip install 'vissearch[torch]')") from None


def read(path: str | Path):
    """The ONNX model in ``path``; a missing, huge or non-ONNX file is one line."""
    onnx = _need("onnx")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise UserError(f"{str(path)!r} is {path.stat().st_size:,} bytes; ONNX files hold 2 GB")
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:150]
        raise UserError(f"{str(path)!r} is not an ONNX model ({first})") from None
    if not model.graph.node:
        raise UserError(f"{str(path)!r} is not an ONNX model (no graph nodes)")
    return model


def input_shape(model, path: Path, size: int | None) -> tuple[str, int, int]:
    """(input name, channels, side) of the one NCHW image input; dynamic sides need ``size``."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise UserError(f"{str(path)!r} has {len(inputs)} inputs; an image model has one")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise UserError(f"{str(path)!r}: input {inputs[0].name!r} has shape {dims}; expected "
                        "an image batch, N x C x H x W")
    _, channels, height, width = dims
    if channels is None:
        raise UserError(f"{str(path)!r}: input {inputs[0].name!r} has a dynamic channel count; "
                        "export it with a fixed one (3)")
    if channels not in (1, 3, 4) and width in (1, 3, 4):
        raise UserError(f"{str(path)!r}: input {inputs[0].name!r} has shape {dims}, channels "
                        "last; expected N x C x H x W (PyTorch's NCHW)")
    side = size or height or width
    if height is None or width is None:
        if size is None:
            raise UserError(f"{str(path)!r}: input {inputs[0].name!r} has dynamic sides "
                            f"{dims[2:]}; give the side to check it at: python -m vissearch "
                            "convert FILE --size 224 --out MODEL.keras (then model.path)")
    elif height != width or (size and size != height):
        raise UserError(f"{str(path)!r}: input {inputs[0].name!r} is {height}x{width}"
                        f"{f', not {size}x{size}' if size else ''}; vissearch renders square "
                        "images: export it square (or with dynamic sides)")
    return inputs[0].name, channels, side


def check_operators(model, path: Path) -> None:
    from onnx2keras.layers import AVAILABLE_CONVERTERS

    for node in model.graph.node:
        if node.op_type not in AVAILABLE_CONVERTERS:
            raise UserError(
                f"{str(path)!r} uses the ONNX operator {node.op_type} (node {node.name!r}), "
                f"which onnx2keras cannot convert; it converts {len(AVAILABLE_CONVERTERS)} "
                "operators: Conv, BatchNormalization, Relu, Clip, Add, MaxPool, Gemm, ...")


def convert(path: str | Path, size: int | None = None, any_size: bool = True) -> Converted:
    """Convert ``path`` to Keras: with ``any_size``, for any input side where the graph allows
    it (else at its own side); without, at its own side."""
    path = Path(path)
    model = read(path)
    _need("onnx2keras")
    name, channels, side = input_shape(model, path, size)
    check_operators(model, path)
    names = onnxnames.layer_names(model.graph)
    original = {names[n.output[0]]: n.name or n.output[0] for n in model.graph.node
                if n.output and n.output[0] in names}
    onnxnames.rename(model.graph, names)
    start = time.perf_counter()
    keras_model = None
    if any_size:
        with contextlib.suppress(UserError):
            keras_model, fixed = _to_keras(model, name, (channels, None, None)), None
    if keras_model is None:
        keras_model, fixed = _to_keras(model, name, (channels, side, side)), side
    if len(keras_model.inputs) == 1 and len(keras_model.outputs) == 1:  # not lists of one
        import keras

        keras_model = keras.Model(keras_model.inputs[0], keras_model.outputs[0],
                                  name=_UNSAFE_NAME.sub("_", path.stem) or "converted")
    seconds = time.perf_counter() - start
    if not any(_spatial(layer) for layer in keras_model.layers[1:]):
        raise UserError(f"{str(path)!r} has no spatial layer (a 4-D feature map) for a filter "
                        "or layer target")
    return Converted(keras_model, path, side, fixed, seconds=seconds, original=original)


def _spatial(layer) -> bool:
    """A layer whose output is a feature map (4-D, not a global pool kept 1 x 1)."""
    import keras

    plain = (keras.layers.GlobalAveragePooling2D, keras.layers.ZeroPadding2D)
    return len(layer.output.shape) == 4 and not isinstance(layer, plain)


def _to_keras(model, name: str, shape: tuple):
    import keras
    from onnx2keras import onnx_to_keras

    fmt = keras.backend.image_data_format()
    try:
        with _plain_layers(), _quiet_logger():
            return onnx_to_keras(model, [name], input_shapes=[shape], name_policy=None,
                                 verbose=False, change_ordering=True)
    except UserError:
        raise
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(f"onnx2keras could not convert the model: {first}") from None
    finally:
        keras.backend.set_image_data_format(fmt)  # onnx2keras leaves channels_first on errors


@contextlib.contextmanager
def _quiet_logger():
    logger = logging.getLogger("onnx2keras")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _plain_layers():
    """Swap in the two converters that make standard layers instead of Lambda layers."""
    from onnx2keras import layers as converters

    table = converters.AVAILABLE_CONVERTERS
    saved = {k: table[k] for k in ("GlobalAveragePool", "Flatten")}
    table["GlobalAveragePool"] = _global_average_pool
    table["Flatten"] = _flatten_with(saved["Flatten"])
    try:
        yield
    finally:
        table.update(saved)


def _global_average_pool(node, params, layers, lambda_func, node_name, keras_name):
    import keras

    pool = keras.layers.GlobalAveragePooling2D(data_format="channels_first", keepdims=True,
                                               name=keras_name)
    layers[node_name] = pool(layers[node.input[0]])


def _flatten_with(fallback):
    def flatten(node, params, layers, lambda_func, node_name, keras_name):
        import keras

        x = layers[node.input[0]]
        if len(node.input) == 1 and tuple(x.shape[2:]) == (1, 1):
            layers[node_name] = keras.layers.Flatten(name=keras_name)(x)  # C x 1 x 1: no order
        else:
            fallback(node, params, layers, lambda_func, node_name, keras_name)
    return flatten


def difference(converted: Converted, seed: int = 0) -> float:
    """The largest |Keras - onnxruntime| over all outputs, on random N(0, 1) images."""
    ort = _need("onnxruntime")
    session = ort.InferenceSession(str(converted.source), providers=["CPUExecutionProvider"])
    feed, batch = session.get_inputs()[0].name, session.get_inputs()[0].shape[0]
    batch = batch if isinstance(batch, int) and 0 < batch <= SAMPLES else 1
    rng = np.random.default_rng(seed)
    side, channels = converted.size, converted.model.input_shape[-1]
    worst = 0.0
    for _ in range(SAMPLES // batch):
        x = rng.standard_normal((batch, channels, side, side), dtype=np.float32)
        want = session.run(None, {feed: x})
        got = converted.model(np.transpose(x, (0, 2, 3, 1)), training=False)
        got = got if isinstance(got, list | tuple) else [got]
        for a, b in zip(want, got, strict=True):
            worst = max(worst, float(np.max(np.abs(a - np.asarray(b)))))
    converted.difference = worst
    return worst


def checked(path: str | Path, size: int | None = None, tolerance: float = TOLERANCE
            ) -> Converted:
    """Convert and compare with onnxruntime; past ``tolerance`` it is refused, with the figure."""
    converted = convert(path, size)
    try:
        worst = difference(converted)
    except Exception:  # the any-size graph did not run at the file's size: convert it at it
        worst = float("nan")
    if converted.fixed_size is None and not worst <= tolerance:
        converted = convert(path, size, any_size=False)
        worst = difference(converted)
    if not worst <= tolerance:
        raise UserError(f"{str(path)!r}: the converted model differs from onnxruntime by up to "
                        f"{worst:.3g} on random inputs, past the tolerance {tolerance:g}; "
                        "not written")
    return converted


def save(converted: Converted, out: str | Path) -> Path:
    """Write the model to ``out`` (.keras) atomically: a failed save leaves nothing there."""
    out = Path(out)
    if out.suffix != ".keras":
        raise UserError(f"--out {str(out)!r}: expected a .keras file name")
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    partial = out.with_name(f".{out.stem}.{os.getpid()}.partial.keras")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        converted.model.save(partial)
        os.replace(partial, out)
    except OSError as err:
        for leftover in (partial, *made):  # innermost folder first: nothing left behind
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True) if leftover is partial else leftover.rmdir()
        raise UserError(f"--out {str(out)!r}: cannot write it ({err.strerror or err})") from None
    except BaseException:  # interrupted, or Keras refused: no partial file stays
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    return out


def source_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def cached(path: str | Path, size: int | None = None) -> Path:
    """The converted model beside ``path`` (``MODEL.onnx.HASH.keras``), converted once."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model.onnx {str(path)!r}: no such file")
    out = path.with_name(f"{path.name}.{source_hash(path)}.keras")
    if not out.is_file():
        converted = checked(path, size)
        try:
            save(converted, out)
        except UserError as err:
            raise UserError(f"model.onnx {str(path)!r}: cannot write its conversion beside it "
                            f"({str(err).rsplit('(', 1)[-1].rstrip(')')}); convert it with "
                            "python -m vissearch convert FILE --out MODEL.keras and give "
                            "model.path") from None
    return out
