"""Calibrated thresholds stored with a model (``eval --save-threshold``); the models themselves come
from the one loader, :func:`keras_arcface.embedding.load_embedder`."""

import json
import pathlib

from keras_arcface.files import THRESHOLD_FILE
from keras_arcface.formats import is_runtime_file

__all__ = ["save_threshold", "threshold_file"]


def threshold_file(model):
    """Where ``eval --save-threshold`` writes a model's calibrated threshold."""
    path = pathlib.Path(model)
    if is_runtime_file(path):
        return pathlib.Path(str(path) + ".json")
    return (path if path.is_dir() else path.parent) / THRESHOLD_FILE


def save_threshold(model, threshold, report, spec=None):
    """Merge the threshold (and the input spec used) into the model's metadata file."""
    target = threshold_file(model)
    data = json.loads(target.read_text()) if target.is_file() else {}
    if spec is not None and target.name.endswith((".onnx.json", ".tflite.json")):
        data["input_spec"] = spec.to_dict()
    data.update({"threshold": float(threshold),
                 "threshold_protocol": f"best global threshold on {report['pairs']} pairs "
                                       f"(accuracy {report['best_threshold_accuracy']:.4f})"})
    target.write_text(json.dumps(data, indent=1))
    return target
