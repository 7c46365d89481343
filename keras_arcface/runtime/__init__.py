"""Embedders behind one contract: .onnx / .tflite files (:class:`FaceEmbedder`) and Keras models handed in
(:class:`KerasEmbedder`); nothing here imports TensorFlow or Keras."""

from keras_arcface.runtime.embedder import KNOWN_SPECS, FaceEmbedder, InputSpec, flip_averaged, l2_normalize, spec_for
from keras_arcface.runtime.keras_embedder import KerasEmbedder, KerasMissingError, keras_available, require_keras
from keras_arcface.runtime.reference import ModelReference

__all__ = ["KNOWN_SPECS", "FaceEmbedder", "InputSpec", "KerasEmbedder", "KerasMissingError", "ModelReference",
           "flip_averaged", "keras_available", "l2_normalize", "require_keras", "spec_for"]
