"""Margin heads: one Keras layer per margin-based softmax (the ArcFace survey's and later ones)."""

from keras_arcface.errors import InputError
from keras_arcface.heads.adaface import AdaFaceLayer
from keras_arcface.heads.arcface import ArcFaceLayer
from keras_arcface.heads.base import MarginHead
from keras_arcface.heads.combined import CombinedMarginLayer
from keras_arcface.heads.cosface import CosFaceLayer
from keras_arcface.heads.curricularface import CurricularFaceLayer
from keras_arcface.heads.elasticface import ElasticArcFaceLayer, ElasticCosFaceLayer
from keras_arcface.heads.labels import IgnoredLabelRows
from keras_arcface.heads.loss import MarginLoss
from keras_arcface.heads.magface import MagFaceLayer
from keras_arcface.heads.normface import NormFaceLayer
from keras_arcface.heads.partial_fc import PartialFCHead
from keras_arcface.heads.softmax import SoftmaxHead
from keras_arcface.heads.sphereface import SphereFaceLayer
from keras_arcface.heads.subcenter import SubCenterArcFaceLayer
from keras_arcface.validation import accepted_parameters

#: Every head by its short name (used by configs and the command line).
HEADS = {
    "softmax": SoftmaxHead,
    "normface": NormFaceLayer,
    "sphereface": SphereFaceLayer,
    "cosface": CosFaceLayer,
    "arcface": ArcFaceLayer,
    "combined": CombinedMarginLayer,
    "subcenter_arcface": SubCenterArcFaceLayer,
    "curricularface": CurricularFaceLayer,
    "adaface": AdaFaceLayer,
    "magface": MagFaceLayer,
    "elastic_arcface": ElasticArcFaceLayer,
    "elastic_cosface": ElasticCosFaceLayer,
    "partial_fc": PartialFCHead,
}


def get_head(head_name, num_classes, **params):
    """Build a head from its short name, e.g. ``get_head("arcface", 1000, margin=0.5)``."""
    try:
        head_class = HEADS[head_name.lower()]
    except (KeyError, AttributeError):
        raise InputError(f"unknown head {head_name!r}; choose one of {sorted(HEADS)}") from None
    accepted = head_parameters(head_class)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(f"{head_class.__name__} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                         f"{', '.join(accepted)}")
    return head_class(num_classes, **params)


def head_parameters(head_class):
    """The keyword parameters a head's constructor accepts (its own, then the base class's, and Keras' ``name``)."""
    return [name for name in accepted_parameters(head_class) if name != "num_classes"] + ["name"]


__all__ = ["HEADS", "AdaFaceLayer", "ArcFaceLayer", "CombinedMarginLayer", "CosFaceLayer", "CurricularFaceLayer",
           "ElasticArcFaceLayer", "ElasticCosFaceLayer", "IgnoredLabelRows", "MagFaceLayer", "MarginHead", "MarginLoss",
           "NormFaceLayer", "PartialFCHead", "SoftmaxHead", "SphereFaceLayer", "SubCenterArcFaceLayer",
           "get_head", "head_parameters"]
