"""How the compiled step computes: ``render.precision`` and ``render.jit``.

``precision: mixed`` runs the network in bfloat16, as Keras mixed precision does
(``mixed_bfloat16``: float32 weights, bfloat16 compute), while the image, the optimizer state,
the gradient arithmetic and the objective stay float32: the network is copied layer by layer
with that dtype policy and its weights, and its outputs are cast back to float32. bfloat16 keeps
float32's range, so no loss scaling is needed; GPUs before compute capability 8.0 (Ampere) have
no fast bfloat16 and are refused. ``jit: true`` compiles the whole step with XLA.

Both are structure settings (:data:`vissearch.engine.hparams.STRUCTURE`): they change the compiled
step, so trials differing in them never share a population.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from vissearch.errors import UserError

POLICY = "mixed_bfloat16"
_MIXED: dict[int, keras.Model] = {}


def mixed(model: keras.Model) -> keras.Model:
    """A copy of ``model`` whose layers compute in bfloat16 (weights float32, shared values)."""
    key = id(model)
    if key not in _MIXED:
        def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
            config = layer.get_config()
            if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
                config["dtype"] = POLICY
            return layer.__class__.from_config(config)

        try:
            copy = keras.models.clone_model(model, clone_function=clone)
            copy.set_weights(model.get_weights())
        except (ValueError, TypeError, NotImplementedError) as err:
            raise UserError(f"render.precision mixed: {model.name} cannot be copied layer by "
                            f"layer ({type(err).__name__}: {str(err)[:120]}); use float32"
                            ) from None
        _MIXED[key] = copy
    return _MIXED[key]


def check_device(precision: str) -> None:
    """Refuse mixed precision on a GPU without fast bfloat16 (before compute capability 8.0)."""
    if precision != "mixed":
        return
    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if cc is not None and tuple(cc) < (8, 0):
            raise UserError(f"render.precision mixed: {gpu.name} has compute capability "
                            f"{cc[0]}.{cc[1]}, without fast bfloat16 (8.0 or newer); use float32")
