"""The render engine: parameterizations, transforms, regularizers, objectives and the
compiled ascent loop. TensorFlow; never Optuna.

Importing it turns TensorFlow's op determinism on for the process: on a machine with more than
one core, the CPU gradient of ``crop_and_resize`` (MaCo's and every ``crops`` render's) adds
an image's crops from several threads in a varying order, and the same seed then gave another
image each time (bench/determinism.py measures what determinism costs)."""

import tensorflow as tf

tf.config.experimental.enable_op_determinism()
