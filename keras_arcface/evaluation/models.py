"""Any embedding model behind one interface: ``embed(uint8 RGB faces) -> L2-normalised (N, d)``.

Accepted: a .onnx or .tflite file (the runtime, no TensorFlow), a ``.keras`` embedding model,
a training output directory (``config.json`` + ``backbone.weights.h5``) or one of its weights
files, or a Keras model.  The calibrated threshold is read from ``threshold.json`` beside a
Keras model, or from the sidecar ``<file>.json`` of a .onnx/.tflite file.
"""

import json
import pathlib

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.runtime import FaceEmbedder, InputSpec, l2_normalize
from keras_arcface.runtime.embedder import folder_spec


class KerasEmbedder:
    """A Keras embedding model fed (x - 127.5) / 128 RGB; ``threshold`` from ``threshold.json``."""

    def __init__(self, model, threshold=None, spec=None):
        self.model = model
        self.spec = spec or InputSpec(size=tuple(model.input_shape[1:3]))
        self.threshold = threshold
        self.path = getattr(model, "name", "keras model")

    def embed(self, faces_rgb_uint8, batch_size=64):
        x = self.spec.prepare(faces_rgb_uint8)
        outputs = [np.asarray(self.model.predict_on_batch(x[i:i + batch_size]))
                   for i in range(0, len(x), batch_size)]
        return l2_normalize(np.concatenate(outputs))


def threshold_file(model):
    """Where ``eval --save-threshold`` writes a model's calibrated threshold."""
    path = pathlib.Path(model)
    if path.suffix.lower() in (".onnx", ".tflite"):
        return pathlib.Path(str(path) + ".json")
    return (path if path.is_dir() else path.parent) / "threshold.json"


def save_threshold(model, threshold, report, spec=None):
    """Merge the threshold (and the input spec used) into the model's metadata file."""
    import dataclasses

    target = threshold_file(model)
    data = json.loads(target.read_text()) if target.is_file() else {}
    if spec is not None and target.name.endswith((".onnx.json", ".tflite.json")):
        data["input_spec"] = {**dataclasses.asdict(spec), "size": list(spec.size)}
    data.update({"threshold": float(threshold),
                 "threshold_protocol": f"best global threshold on {report['pairs']} pairs "
                                       f"(accuracy {report['best_threshold_accuracy']:.4f})"})
    target.write_text(json.dumps(data, indent=1))
    return target


def load_embedder(model, spec=None):
    """An embedder for a path or Keras model (see the module docstring)."""
    if not isinstance(model, (str, pathlib.Path)):
        return KerasEmbedder(model, spec=spec)
    path = pathlib.Path(model)
    if path.suffix.lower() in (".onnx", ".tflite"):
        return FaceEmbedder(path, spec=spec)
    folder = path if path.is_dir() else path.parent
    threshold_path = folder / "threshold.json"
    threshold = json.loads(threshold_path.read_text())["threshold"] if threshold_path.is_file() else None
    spec = spec if spec is not None else folder_spec(folder)
    if path.suffix == ".keras" or path.is_dir() or path.name.endswith(".weights.h5"):
        from keras_arcface.export.source import embedding_model  # the one path -> Keras model resolver

        return KerasEmbedder(embedding_model(path), threshold, spec)
    raise InputError(f"cannot use {model!r} as a model: expected a .onnx, .tflite or .keras file, or a "
                     "training output directory")
