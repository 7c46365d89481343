"""Margin heads: one Keras layer per margin-based softmax (the ArcFace survey's and later ones).

Every module of this package is imported here, and each head registers itself in :data:`HEADS` with
``@register_head("name")``; the package's public names are the registered classes (and the names
they had before a rename), so a new head is one file.
"""

import importlib
import pkgutil

import keras_arcface.runtime.keras_required  # noqa: F401  (first: without Keras, one error naming the extra)
from keras_arcface.errors import InputError
from keras_arcface.heads.base import MarginHead
from keras_arcface.heads.labels import IgnoredLabelRows
from keras_arcface.heads.loss import MarginLoss
from keras_arcface.registry import HEADS
from keras_arcface.validation import accepted_parameters

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: Public class names: each registered head under its name and its names before a rename.
HEAD_CLASSES = {cls.__name__: cls for cls in HEADS.classes()} | HEADS.old_names
globals().update(HEAD_CLASSES)


def get_head(head_name, num_classes, **params):
    """Build a head from its short name, e.g. ``get_head("arcface", 1000, margin=0.5)``."""
    head_class = HEADS.lookup(head_name)
    accepted = head_parameters(head_class)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(f"{head_class.__name__} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                         f"{', '.join(accepted)}")
    return head_class(num_classes, **params)


def head_parameters(head_class):
    """The keyword parameters a head's constructor accepts (its own, then the base class's, and Keras' ``name``)."""
    return [name for name in accepted_parameters(head_class) if name != "num_classes"] + ["name"]


__all__ = ["HEADS", "IgnoredLabelRows", "MarginHead", "MarginLoss", *sorted(HEAD_CLASSES), "get_head",
           "head_parameters"]
