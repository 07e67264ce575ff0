"""The render engine: parameterizations, transforms, regularizers, objectives and the
compiled ascent loop. TensorFlow; never Optuna. (Its light modules, ``seeds`` and ``halving``,
load without TensorFlow; :mod:`vissearch.engine.step` turns op determinism on.)"""
