"""keras-arcface: margin-based softmax heads and face-recognition models for Keras 3.

Names are imported lazily, so ``FaceVerifier``, ``FaceIndex`` and ``keras_arcface.runtime``
(ONNX / TFLite inference) can be used without importing Keras or TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_HEAD_NAMES = ("HEADS", "AdaFaceLayer", "ArcFaceLayer", "CombinedMarginLayer", "CosFaceLayer", "CurricularFaceLayer",
               "ElasticArcFaceLayer", "ElasticCosFaceLayer", "MagFaceLayer", "MarginHead", "MarginLoss",
               "NormFaceLayer", "PartialFCHead", "SoftmaxHead", "SphereFaceLayer", "SubCenterArcFaceLayer",
               "get_head")

#: Inference names (no Keras needed for .onnx / .tflite models) and the modules that define them.
_INFERENCE_NAMES = {"FaceVerifier": "verification", "VerificationResult": "verification", "FaceIndex": "gallery",
                    "load_embedder": "embedding"}

__all__ = [*_HEAD_NAMES, *_INFERENCE_NAMES, "__version__"]


def __getattr__(name):
    if name in _HEAD_NAMES:
        return getattr(importlib.import_module("keras_arcface.heads"), name)
    if name in _INFERENCE_NAMES:
        return getattr(importlib.import_module(f"keras_arcface.{_INFERENCE_NAMES[name]}"), name)
    raise AttributeError(f"module 'keras_arcface' has no attribute {name!r}")
