"""Face-embedding backbones, by name: MobileFaceNet, SFace and IResNet-18/34/50/100."""

import functools

from keras_arcface.backbones.flops import count_macs
from keras_arcface.backbones.iresnet import IResNet
from keras_arcface.backbones.mobilefacenet import MobileFaceNet
from keras_arcface.backbones.sface import SFace
from keras_arcface.errors import InputError
from keras_arcface.validation import accepted_parameters, check_parameters, parameter_ranges

#: name -> constructor; every constructor takes embedding_size= and input_shape=.
BACKBONES = {
    "mobilefacenet": MobileFaceNet,
    "sface": SFace,
    "iresnet18": functools.partial(IResNet, 18),
    "iresnet34": functools.partial(IResNet, 34),
    "iresnet50": functools.partial(IResNet, 50),
    "iresnet100": functools.partial(IResNet, 100),
}


def get_backbone(name, **params):
    """Build a backbone by name, e.g. ``get_backbone("iresnet50", embedding_size=512)``."""
    constructor = _constructor(name)
    check_backbone_parameters(name, params)
    return constructor(**params)


def _constructor(name):
    try:
        return BACKBONES[name.lower()]
    except (KeyError, AttributeError):
        raise InputError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}") from None


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
    """The backbone a run's or a conversion's ``config.json`` describes (``backbone``, ``backbone_params``,
    ``embedding_size``, ``image_size``), freshly initialised."""
    size = int(config.get("image_size", 112))
    return get_backbone(config["backbone"], embedding_size=int(config["embedding_size"]),
                        input_shape=(size, size, 3), **dict(config.get("backbone_params") or {}))


__all__ = ["BACKBONES", "IResNet", "MobileFaceNet", "SFace", "backbone_from_config", "backbone_parameters",
           "check_backbone_parameters", "count_macs", "get_backbone"]
