"""Face-embedding backbones, by name: MobileFaceNet, SFace and IResNet-18/34/50/100.

Every module of this package is imported here, and each backbone registers itself in
:data:`BACKBONES` with ``@register_backbone("name", tiny={...})`` (every constructor takes
``embedding_size=`` and ``input_shape=``), so a new backbone is one file.
"""

import importlib
import pkgutil

import keras_arcface.runtime.keras_required  # noqa: F401  (first: without Keras, one error naming the extra)
from keras_arcface.backbones.flops import count_macs
from keras_arcface.errors import InputError
from keras_arcface.registry import BACKBONES
from keras_arcface.runtime.embedder import DEFAULT_SPEC
from keras_arcface.validation import accepted_parameters, check_parameters, parameter_ranges

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: Public class names: each registered backbone class under its name.
BACKBONE_CLASSES = {cls.__name__: cls for cls in BACKBONES.classes()}
globals().update(BACKBONE_CLASSES)


def get_backbone(name, **params):
    """Build a backbone by name, e.g. ``get_backbone("iresnet50", embedding_size=512)``."""
    constructor = _constructor(name)
    check_backbone_parameters(name, params)
    return constructor(**params)


def _constructor(name):
    return BACKBONES.lookup(name)


def backbone_parameters(name):
    """The keyword parameters the named backbone's constructor accepts (those a registry partial fixes excluded)."""
    return accepted_parameters(_constructor(name))


def check_backbone_parameters(name, params):
    """Raise :class:`~keras_arcface.errors.InputError` for a parameter the backbone does not take or a
    value outside its declared range, without building the network."""
    constructor = _constructor(name)
    accepted = accepted_parameters(constructor)
    unknown = sorted(set(params) - set(accepted)) if accepted is not None else []
    if unknown:
        raise InputError(f"backbone {name!r} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                         f"{', '.join(accepted)}")
    ranges = parameter_ranges(constructor)
    check_parameters(constructor, **{key: value for key, value in params.items() if key in ranges})


def backbone_from_config(config):
    """The backbone a run's, a conversion's or a zoo model's ``config.json`` describes (``backbone``,
    ``backbone_params``, ``embedding_size``, ``image_size``), freshly initialised."""
    size = int(config.get("image_size", DEFAULT_SPEC.size[0]))
    return get_backbone(config["backbone"], embedding_size=int(config["embedding_size"]),
                        input_shape=(size, size, 3), **dict(config.get("backbone_params") or {}))


def backbone_with_weights(config, weights_path, precision="float32"):
    """:func:`backbone_from_config` built under the dtype policy ``precision``, with the weights of
    ``weights_path`` (a ``.weights.h5``) loaded: the one way every saved backbone is rebuilt."""
    from keras_arcface.dtypes import dtype_policy

    with dtype_policy(precision):
        backbone = backbone_from_config(config)
        backbone.load_weights(weights_path)
    return backbone


__all__ = ["BACKBONES", *sorted(BACKBONE_CLASSES), "backbone_from_config", "backbone_parameters",
           "backbone_with_weights",
           "check_backbone_parameters", "count_macs", "get_backbone"]
