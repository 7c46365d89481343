"""Named registries, filled where each entry is defined (timm's ``register_model`` pattern).

A head or a backbone registers itself with a decorator in its own file (:func:`register_head`,
:func:`register_backbone`); the decorator also registers the class for Keras serialization. The
package's public names, the configs' and the command line's choices and the registry-wide tests
all read the registries, so a new head or backbone is one file.
"""

import functools

from keras_arcface.errors import InputError

#: The Keras serialization package of every registered class ("keras_arcface>ArcFaceLayer").
SERIALIZATION_PACKAGE = "keras_arcface"


class Registry(dict):
    """name -> constructor (a class, or a ``functools.partial`` of one); ``kind`` names it in errors."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        #: name -> keyword arguments of a tiny configuration (for the registry-wide tests).
        self.tiny = {}
        #: old class name -> alias subclass, kept so that files saved before a rename still load.
        self.old_names = {}

    def register(self, name, constructor, tiny=None):
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = constructor
        if tiny is not None:
            self.tiny[name] = dict(tiny)

    def lookup(self, name):
        """The constructor registered as ``name`` (case-insensitive); an :class:`InputError` naming the
        choices otherwise."""
        try:
            return self[name.lower()]
        except (KeyError, AttributeError):
            raise InputError(f"unknown {self.kind} {name!r}; choose one of {sorted(self)}") from None

    def classes(self):
        """The distinct classes behind the entries, in registration order."""
        from keras_arcface.validation import unwrap

        return list(dict.fromkeys(unwrap(constructor) for constructor in self.values()))


def register_serializable(cls):
    """Register ``cls`` for Keras serialization as ``keras_arcface>ClassName`` (once)."""
    import keras

    if keras.saving.get_registered_object(f"{SERIALIZATION_PACKAGE}>{cls.__name__}") is not cls:
        cls = keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)(cls)
    return cls


def renamed_alias(cls, old_name):
    """A subclass of ``cls`` called ``old_name``, registered under that name: a ``.keras`` file records
    the class name twice (the config's ``registered_name`` and the weights' path, its snake case), so a
    file saved before a rename loads only into a class of the old name."""
    alias = type(old_name, (cls,), {"__module__": cls.__module__,
                                    "__doc__": f"{cls.__name__} under its name before the rename (files saved "
                                               "with it keep loading)."})
    return register_serializable(alias)


HEADS = Registry("head")
BACKBONES = Registry("backbone")


def register_head(name, old_names=()):
    """Class decorator: ``@register_head("arcface")`` puts the head in :data:`HEADS` and registers it for
    Keras serialization; ``old_names`` are earlier class names, kept as aliases."""

    def decorate(cls):
        cls = register_serializable(cls)
        HEADS.register(name, cls)
        HEADS.old_names.update({old_name: renamed_alias(cls, old_name) for old_name in old_names})
        return cls

    return decorate


def register_backbone(name, tiny, *args, **fixed):
    """Class decorator: ``@register_backbone("iresnet50", tiny={...}, 50)`` puts ``functools.partial(cls,
    *args, **fixed)`` (or the class) in :data:`BACKBONES` as ``name``.  ``tiny`` is a small configuration
    (constructor keywords, with ``input_shape``) that the registry-wide tests build.  Decorators stack."""

    def decorate(cls):
        cls = register_serializable(cls)
        BACKBONES.register(name, functools.partial(cls, *args, **fixed) if args or fixed else cls, tiny)
        return cls

    return decorate
