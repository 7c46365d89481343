"""Imported first by every package that builds Keras models (heads, backbones, losses, training, export,
convert): without Keras and its backend, the import stops with one
:class:`~keras_arcface.runtime.keras_embedder.KerasMissingError` naming the extra to install, instead of a
``ModuleNotFoundError`` deep inside."""

from keras_arcface.runtime.keras_embedder import require_keras

require_keras("keras-arcface's Keras layers, backbones, training, export and conversion")
