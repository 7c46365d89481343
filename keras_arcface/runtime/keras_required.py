"""Imported first by every package that builds Keras models (heads, backbones, losses, training, export,
convert): without Keras and its backend, the import stops with one
:class:`~keras_arcface.runtime.keras_embedder.KerasMissingError` naming the extra to install, instead of a
``ModuleNotFoundError`` deep inside; with them, TensorFlow starts without its C++ start-up lines
(:func:`quiet_tensorflow`), for the Python API as for the command line."""

import importlib.util
import os

from keras_arcface.runtime.embedder import native_stderr_silenced
from keras_arcface.runtime.keras_embedder import require_keras


def quiet_tensorflow():
    """Import TensorFlow and initialise its devices with the process's stderr (file descriptor 2) pointed at
    /dev/null: TensorFlow's C++ start-up lines (oneDNN, CUDA stubs, a cuInit "E0000" line on machines without a
    GPU) bypass Python logging and ignore TF_CPP_MIN_LOG_LEVEL.  Nothing when TensorFlow is not the backend or
    is not installed; ``TF_CPP_MIN_LOG_LEVEL`` set to 0 or 1 keeps the lines (someone asked for them)."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or importlib.util.find_spec("tensorflow") is None:
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3").strip() in ("0", "1"):
        return
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


require_keras("keras-arcface's Keras layers, backbones, training, export and conversion")
quiet_tensorflow()
