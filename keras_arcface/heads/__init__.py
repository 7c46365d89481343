"""Margin heads: one Keras layer per margin-based softmax of the ArcFace survey."""

from keras_arcface.heads.arcface import ArcFaceLayer
from keras_arcface.heads.base import MarginHead
from keras_arcface.heads.combined import CombinedMarginLayer
from keras_arcface.heads.cosface import CosFaceLayer
from keras_arcface.heads.loss import MarginLoss
from keras_arcface.heads.normface import NormFaceLayer
from keras_arcface.heads.softmax import SoftmaxHead
from keras_arcface.heads.sphereface import SphereFaceLayer

#: Every head by its short name (used by configs and the command line).
HEADS = {
    "softmax": SoftmaxHead,
    "normface": NormFaceLayer,
    "sphereface": SphereFaceLayer,
    "cosface": CosFaceLayer,
    "arcface": ArcFaceLayer,
    "combined": CombinedMarginLayer,
}


def get_head(head_name, num_classes, **params):
    """Build a head from its short name, e.g. ``get_head("arcface", 1000, margin=0.5)``."""
    try:
        head_class = HEADS[head_name.lower()]
    except KeyError:
        raise ValueError(f"unknown head {head_name!r}; choose one of {sorted(HEADS)}") from None
    return head_class(num_classes, **params)


__all__ = ["ArcFaceLayer", "CombinedMarginLayer", "CosFaceLayer", "HEADS", "MarginHead", "MarginLoss",
           "NormFaceLayer", "SoftmaxHead", "SphereFaceLayer", "get_head"]
