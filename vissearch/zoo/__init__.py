"""Models the project owns, trained on its own procedural data, shipped inside the package.

``zoo/shapes`` (the model to visualize) and ``zoo/shapes-judge`` (an independent model that only
scores) work wherever a model is named. ``python -m vissearch zoo train shapes`` retrains both.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent.parent / "zoo_weights"
NAMES = ("zoo/shapes", "zoo/shapes-judge")
JUDGES = {"zoo/shapes": "zoo/shapes-judge"}


def weights_file(name: str) -> Path:
    return WEIGHTS / f"{name.removeprefix('zoo/')}.keras"


def load(name: str):
    """A zoo model as a LoadedModel (pixels 0..255 in, any image size)."""
    import keras

    from vissearch.errors import UserError, closest
    from vissearch.imageio import Preprocess
    from vissearch.models import LoadedModel

    if name not in NAMES:
        raise UserError(f"model.name {name!r} is not in the zoo{closest(name, NAMES)}; "
                        f"valid: {', '.join(NAMES)}")
    path = weights_file(name)
    if not path.is_file():
        raise UserError(f"{name}: {path} is missing; retrain with "
                        f"python -m vissearch zoo train {name.removeprefix('zoo/').split('-')[0]}")
    model = keras.saving.load_model(path, compile=False)
    return LoadedModel(model, Preprocess.named("none"), name)
