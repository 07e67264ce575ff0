"""TensorFlow without its native start-up chatter. No TensorFlow at import.

TensorFlow's C++ libraries print CUDA probes ("Could not find cuda drivers", "failed call to
cuInit") and absl's "All log messages before absl::InitializeLog()" notice straight to file
descriptor 2 when they load, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. The command line imports
TensorFlow once under :func:`native_stderr_silenced`, unless ``--debug`` or the user's own
``TF_CPP_MIN_LOG_LEVEL`` (0, 1 or 2) asks for the lines.
"""

from __future__ import annotations

import contextlib
import os
import sys


def import_tensorflow(debug: bool = False) -> None:
    """Import TensorFlow and discover its devices with the native lines silenced, unless
    ``debug`` or a ``TF_CPP_MIN_LOG_LEVEL`` below 3 asks for TensorFlow's logs."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")
    if debug or level != "3":
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery logs once; do it here


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null (native libraries write there, not to sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
