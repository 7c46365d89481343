"""The one loader: "the embedding model of X" and "an embedder for X", for every X a user has.

:func:`load_keras_model` gives the float32 Keras embedding model of a zoo name, a training run's or a
converted model's folder (``config.json`` + ``backbone.weights.h5``: rebuilt through the config, as a
zoo model is from its card's hashed ``config.json``), one of its ``.weights.h5`` files, a ``.keras``
file, or a ``keras.Model`` (a training model gives its backbone).  Export, evaluation, conversion
and the command line all use it.

:func:`load_embedder` gives an embedder behind the one embedding contract (aligned uint8 RGB faces
(N, H, W, 3) or one face in, L2-normalised float32 (N, d) out, the model's own input spec applied)
for the same sources and for ``.onnx`` / ``.tflite`` files and nothing at all (the zoo's default
model).  Each embedder carries ``reference`` (:class:`~keras_arcface.runtime.reference.ModelReference`:
the model's name, input spec, same-person threshold and thresholds per false-accept rate with their
sources, licence, and where its file came from), handed to it at construction.  A zoo name
without a format uses the card's smallest .onnx / .tflite artifact that passes its gates
(:meth:`~keras_arcface.zoo.ModelCard.runtime_format`), so the runtime routes import neither
TensorFlow nor Keras.
"""

import json
import pathlib

from keras_arcface.errors import InputError
from keras_arcface.files import BACKBONE_WEIGHTS, CONFIG_FILE, THRESHOLD_FILE
from keras_arcface.formats import is_runtime_file
from keras_arcface.runtime import FaceEmbedder, KerasEmbedder, keras_available, require_keras
from keras_arcface.runtime.embedder import folder_spec

__all__ = ["KerasEmbedder", "keras_available", "load_embedder", "load_keras_model", "require_keras", "zoo_reference"]



def zoo_reference(model):
    """``(name, format or None)`` when ``model`` names a zoo model (``name`` or ``name:format``) and is
    not an existing path; else None."""
    if not isinstance(model, str) or pathlib.Path(model).exists():
        return None
    from keras_arcface.zoo import list_models

    name, _, fmt = model.partition(":")
    return (name, fmt or None) if name in list_models(include_examples=True) else None


def check_model_name(model):
    """An :class:`InputError` now, without loading anything, for a ``model`` that is neither a zoo name nor a path
    that exists (what :func:`load_embedder` would refuse after its imports)."""
    if model is not None and zoo_reference(str(model)) is None and not pathlib.Path(model).exists():
        raise _unknown_model(model)


def _unknown_model(model):
    from keras_arcface.zoo import list_models

    return InputError(f"cannot use model {str(model)!r}: not found, it is neither a file, a folder nor a zoo model "
                      f"name; pass a zoo name ({', '.join(list_models())}; name:FORMAT for one file, e.g. "
                      "sface:onnx), a .onnx, .tflite or .keras file, or a training output folder")


def load_keras_model(source, precision="float32", **zoo_options):
    """The Keras embedding model of ``source`` (see the module docstring), built under ``precision``; a
    model built under a mixed policy is rebuilt in float32 with the same weights.  ``zoo_options``
    (``urls``, ``cache_dir``, ``offline``) go to the zoo's download.  Without Keras and its backend: an
    :class:`~keras_arcface.errors.InputError` naming the extra to install."""
    if not isinstance(source, (str, pathlib.Path)) or not is_runtime_file(source):
        require_keras(str(getattr(source, "name", source)))
    if isinstance(source, (str, pathlib.Path)):
        reference = zoo_reference(str(source))
        if reference is not None:
            name, fmt = reference
            if fmt not in (None, "keras"):
                raise InputError(f"{source} is the {fmt} file of a zoo model; its Keras model is {name} (or "
                                 f"{name}:keras)")
            from keras_arcface.zoo import load_backbone

            return load_backbone(name, precision, **zoo_options)
        source = _keras_model_at(pathlib.Path(source), precision)
    return _embedding_part(source, precision)


def _keras_model_at(path, precision):
    if path.name.endswith(".weights.h5") and (path.parent / CONFIG_FILE).is_file():
        path = path.parent
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        if not (path / BACKBONE_WEIGHTS).is_file():
            raise InputError(f"{path} has no {BACKBONE_WEIGHTS}: a training run writes it when it finishes (run the "
                             "same train command again to finish it)")
        from keras_arcface.backbones import backbone_with_weights

        config = json.loads((path / CONFIG_FILE).read_text())
        return backbone_with_weights(config, path / BACKBONE_WEIGHTS, precision)
    if not path.exists():
        raise _unknown_model(path)
    if path.suffix == ".keras" and path.is_file():
        import keras

        import keras_arcface.backbones  # noqa: F401  (registers the classes)
        import keras_arcface.heads  # noqa: F401

        try:
            return keras.models.load_model(path, safe_mode=True)
        except Exception as error:  # Keras reports a corrupt archive as "File not found" and others
            detail = " ".join(str(error).split())[:200]
            raise InputError(f"cannot load {path} as a .keras model ({type(error).__name__}: {detail}); the file "
                             "may be truncated or of another kind: save or download it again") from None
    raise InputError(f"cannot load {str(path)!r} as a Keras model: expected a zoo name, a training or converted "
                     "model's folder, its weights file, or a .keras file")


def _embedding_part(model, precision):
    """The embedding model inside ``model`` (a training model's backbone), float32 if built half."""
    import keras

    if len(model.inputs) == 2:  # [images, labels] -> logits: take the backbone
        backbones = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(backbones) != 1:
            raise InputError("a training model must contain exactly one backbone sub-model")
        model = backbones[0]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InputError("the embedding model must have one image input and one embedding output")
    if precision == "float32" and _is_half(model):
        model = _rebuilt(model, "float32")
    return model


def _is_half(model):
    return any(layer.dtype_policy.compute_dtype in ("float16", "bfloat16") for layer in model._flatten_layers())


def _rebuilt(model, precision):
    """A registered keras_arcface model rebuilt under ``precision`` with its weights copied."""
    from keras_arcface.dtypes import dtype_policy

    with dtype_policy(precision):
        clone = type(model).from_config(model.get_config())
    clone.set_weights([weight.astype(precision) for weight in model.get_weights()])
    return clone


def load_embedder(model=None, spec=None, flip=False, **zoo_options):
    """An embedder for ``model`` (see the module docstring; an embedder is used as it is); ``spec`` overrides
    the input spec; ``flip`` embeds each face with its mirror image.  ``zoo_options`` (``urls``, ``cache_dir``,
    ``offline``) go to the zoo's download."""
    from keras_arcface.runtime.reference import ReferencedEmbedder
    from keras_arcface.zoo import load_model

    if model is None:
        return load_model(spec=spec, flip=flip, **zoo_options)
    if isinstance(model, ReferencedEmbedder):
        if spec is not None or flip:
            raise InputError("spec and flip are an embedder's own: give them when making it, not with it")
        return model
    if not isinstance(model, (str, pathlib.Path)):
        return KerasEmbedder(load_keras_model(model), spec=spec, flip=flip)
    reference = zoo_reference(str(model))
    if reference is not None:
        return load_model(*reference, spec=spec, flip=flip, **zoo_options)
    path = pathlib.Path(model)
    if not path.exists():
        raise _unknown_model(model)
    if is_runtime_file(path):
        return FaceEmbedder(path, spec=spec, flip=flip)
    folder = path if path.is_dir() else path.parent
    threshold_path = folder / THRESHOLD_FILE
    threshold = json.loads(threshold_path.read_text())["threshold"] if threshold_path.is_file() else None
    spec = spec if spec is not None else folder_spec(folder)
    if path.suffix == ".keras" or path.is_dir() or path.name.endswith(".weights.h5"):
        require_keras(str(model))
        return KerasEmbedder(load_keras_model(path), threshold, spec, flip=flip)
    raise InputError(f"cannot use {str(model)!r} as a model: expected a zoo name, a .onnx, .tflite or .keras file, "
                     "or a training output directory")
