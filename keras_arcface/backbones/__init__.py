"""Face-embedding backbones, by name: MobileFaceNet, SFace and IResNet-18/34/50/100."""

import functools

from keras_arcface.backbones.flops import count_macs
from keras_arcface.backbones.iresnet import IResNet
from keras_arcface.backbones.mobilefacenet import MobileFaceNet
from keras_arcface.backbones.sface import SFace

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
    try:
        constructor = BACKBONES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}") from None
    return constructor(**params)


def backbone_from_config(config):
    """The backbone a run's or a conversion's ``config.json`` describes (``backbone``, ``backbone_params``,
    ``embedding_size``, ``image_size``), freshly initialised."""
    size = int(config.get("image_size", 112))
    return get_backbone(config["backbone"], embedding_size=int(config["embedding_size"]),
                        input_shape=(size, size, 3), **dict(config.get("backbone_params") or {}))


__all__ = ["BACKBONES", "IResNet", "MobileFaceNet", "SFace", "backbone_from_config", "count_macs", "get_backbone"]
