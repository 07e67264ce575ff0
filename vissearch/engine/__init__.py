"""The render engine: parameterizations, transforms, regularizers, objectives and the
compiled ascent loop. TensorFlow; never Optuna."""
