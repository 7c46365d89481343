"""keras-arcface: margin-based softmax heads and face-recognition models for Keras 3.

Names are imported lazily, so ``FaceVerifier``, ``FaceIndex`` and ``keras_arcface.runtime``
(ONNX / TFLite inference) can be used without importing Keras or TensorFlow.  The head names
are those of :mod:`keras_arcface.heads` (its registry), read when first asked for.
"""

import importlib
import os
import platform

__version__ = "0.1.0"

#: TensorFlow's oneDNN kernels, which TensorFlow leaves off on x86 CPUs without AVX-512: on the 2-core
#: AMD EPYC of our CI they train MobileFaceNet 2.1x and IResNet-18 1.5x faster (docs/training.md,
#: "oneDNN").  Read once, when TensorFlow is imported, so it is set here, before any module of ours
#: imports it; ``TF_ENABLE_ONEDNN_OPTS=0`` in the environment keeps TensorFlow's own kernels.
ONEDNN_BY_DEFAULT = platform.machine().lower() in ("x86_64", "amd64")
if ONEDNN_BY_DEFAULT:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

#: Inference names (no Keras needed for .onnx / .tflite models) and the modules that define them.
_INFERENCE_NAMES = {"FaceVerifier": "verification", "VerificationResult": "verification", "FaceIndex": "gallery",
                    "load_embedder": "embedding", "cluster_faces": "clustering", "FaceClusters": "clustering"}


def _heads():
    return importlib.import_module("keras_arcface.heads")


def __getattr__(name):
    if name == "__all__":  # `from keras_arcface import *`: the heads' names need the heads package
        return [*_heads().__all__, *_INFERENCE_NAMES, "__version__"]
    if name in _INFERENCE_NAMES:
        return getattr(importlib.import_module(f"keras_arcface.{_INFERENCE_NAMES[name]}"), name)
    if not name.startswith("_"):
        try:
            heads = _heads()
        except ImportError:  # an installation without Keras has no heads
            heads = None
        if heads is not None and name in heads.__all__:
            return getattr(heads, name)
    raise AttributeError(f"module 'keras_arcface' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_INFERENCE_NAMES))
