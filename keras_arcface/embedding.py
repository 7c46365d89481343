"""One embedding contract and one loader for it.

Every embedder (Keras, ONNX, TFLite) takes aligned uint8 RGB faces (N, H, W, 3) or one face
(H, W, 3), applies its model's own input spec, and returns L2-normalised float32 (N, d).  Each
carries ``threshold`` (the same-person cosine threshold, or None), ``threshold_source`` (where it
comes from) and ``far_thresholds`` ({"1e-3": threshold, ...}, from a zoo card).

:func:`load_embedder` accepts nothing (the zoo's default model), a zoo name (``"sface"``, or
``"sface:onnx"`` for one artifact), an ``.onnx`` / ``.tflite`` file, a ``.keras`` file, a training or
converted-model folder, one of its ``.weights.h5`` files, or a ``keras.Model``.  A zoo name without a
format uses the card's smallest .onnx / .tflite artifact that passes its gates
(:meth:`~keras_arcface.zoo.ModelCard.runtime_format`), so the runtime routes import neither
TensorFlow nor Keras.
"""

import json
import pathlib

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.runtime import FaceEmbedder, InputSpec, l2_normalize
from keras_arcface.runtime.embedder import folder_spec


class KerasEmbedder:
    """A Keras embedding model behind the embedding contract; ``model`` is the raw Keras model
    (for training or fine-tuning: it wants the spec's preprocessing and returns unnormalised vectors)."""

    def __init__(self, model, threshold=None, spec=None):
        self.model = model
        self.spec = spec or InputSpec(size=tuple(model.input_shape[1:3]))
        self.threshold = threshold
        self.threshold_source = "threshold.json beside the model" if threshold is not None else ""
        self.far_thresholds, self.far_source = {}, ""
        self.path = getattr(model, "name", "keras model")

    def embed(self, faces_rgb_uint8, batch_size=64):
        x = self.spec.prepare(faces_rgb_uint8)
        outputs = [np.asarray(self.model.predict_on_batch(x[i:i + batch_size]))
                   for i in range(0, len(x), batch_size)]
        return l2_normalize(np.concatenate(outputs))


def keras_available():
    """Keras and the backend it would use (``$KERAS_BACKEND``, default TensorFlow) are installed,
    judged without importing either."""
    import importlib.util
    import os

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return all(importlib.util.find_spec(module) is not None for module in ("keras", backend))


def zoo_reference(model):
    """``(name, format or None)`` when ``model`` names a zoo model (``name`` or ``name:format``) and is
    not an existing path; else None."""
    if not isinstance(model, str) or pathlib.Path(model).exists():
        return None
    from keras_arcface.zoo import list_models

    name, _, fmt = model.partition(":")
    return (name, fmt or None) if name in list_models() else None


def require_keras(what):
    """An :class:`InputError` saying what to install when ``what`` needs Keras and it is missing."""
    if not keras_available():
        raise InputError(f"{what} is a Keras model, and Keras with its backend is not installed: pip install "
                         "'keras-arcface[tensorflow]', or use an .onnx / .tflite model (e.g. a zoo name without "
                         ":keras)")


def load_embedder(model=None, spec=None, **zoo_options):
    """An embedder for ``model`` (see the module docstring); ``spec`` overrides the input spec.
    ``zoo_options`` (``urls``, ``cache_dir``, ``offline``) go to the zoo's download."""
    if model is None:
        from keras_arcface.zoo import default_model

        model = default_model()
    if not isinstance(model, (str, pathlib.Path)):
        return KerasEmbedder(model, spec=spec)
    reference = zoo_reference(str(model))
    if reference is not None:
        return load_zoo_embedder(*reference, spec=spec, **zoo_options)
    path = pathlib.Path(model)
    if not path.exists():
        from keras_arcface.zoo import list_models

        raise InputError(f"cannot use model {str(model)!r}: it is neither a file, a folder nor a zoo model name (zoo: "
                         f"{', '.join(list_models())}; a zoo name may end in :FORMAT, e.g. sface:onnx)")
    if path.suffix.lower() in (".onnx", ".tflite"):
        return FaceEmbedder(path, spec=spec)
    folder = path if path.is_dir() else path.parent
    threshold_path = folder / "threshold.json"
    threshold = json.loads(threshold_path.read_text())["threshold"] if threshold_path.is_file() else None
    spec = spec if spec is not None else folder_spec(folder)
    if path.suffix == ".keras" or path.is_dir() or path.name.endswith(".weights.h5"):
        require_keras(str(model))
        from keras_arcface.export.source import embedding_model  # the one path -> Keras model resolver

        return KerasEmbedder(embedding_model(path), threshold, spec)
    raise InputError(f"cannot use {str(model)!r} as a model: expected a zoo name, a .onnx, .tflite or .keras file, "
                     "or a training output directory")


def load_zoo_embedder(name, fmt=None, spec=None, **zoo_options):
    """The embedder of zoo model ``name`` in format ``fmt`` (default: the card's runtime format),
    carrying the card's thresholds for that artifact."""
    from keras_arcface.zoo import download, load_backbone, model_card

    card = model_card(name)
    fmt = fmt or card.runtime_format() or "keras"
    card.artifact(fmt)  # an unknown format is named before anything is downloaded
    spec = spec if spec is not None else InputSpec(**card.input_spec)
    if fmt == "keras":
        require_keras(f"{name}:keras")
        embedder = KerasEmbedder(load_backbone(name, **zoo_options), spec=spec)
    else:
        embedder = FaceEmbedder(download(name, fmt, **zoo_options), spec=spec)
    thresholds = card.thresholds(fmt)
    embedder.threshold, embedder.threshold_source = thresholds["threshold"], thresholds["source"]
    embedder.far_thresholds = thresholds["far"]
    embedder.far_source = thresholds["far_source"]
    embedder.zoo_name, embedder.format = name, fmt
    return embedder
