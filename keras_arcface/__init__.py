"""keras-arcface: margin-based softmax heads and face-recognition models for Keras 3."""

__version__ = "0.1.0"

from keras_arcface.heads import (  # noqa: E402
    HEADS,
    ArcFaceLayer,
    CombinedMarginLayer,
    CosFaceLayer,
    MarginHead,
    MarginLoss,
    NormFaceLayer,
    SoftmaxHead,
    SphereFaceLayer,
    get_head,
)

__all__ = ["ArcFaceLayer", "CombinedMarginLayer", "CosFaceLayer", "HEADS", "MarginHead", "MarginLoss",
           "NormFaceLayer", "SoftmaxHead", "SphereFaceLayer", "get_head", "__version__"]
