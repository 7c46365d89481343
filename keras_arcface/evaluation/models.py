"""Calibrated thresholds stored with a model (``eval --save-threshold``).  The loader and the
Keras embedder live in :mod:`keras_arcface.embedding`; they are re-exported here."""

import json
import pathlib

from keras_arcface.embedding import KerasEmbedder, load_embedder

__all__ = ["KerasEmbedder", "load_embedder", "save_threshold", "threshold_file"]


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
