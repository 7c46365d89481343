"""On-device inference from .onnx / .tflite files; imports neither TensorFlow nor Keras."""

from keras_arcface.runtime.embedder import KNOWN_SPECS, FaceEmbedder, InputSpec, l2_normalize, spec_for

__all__ = ["KNOWN_SPECS", "FaceEmbedder", "InputSpec", "l2_normalize", "spec_for"]
