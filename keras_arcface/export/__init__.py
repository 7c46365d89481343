"""Export the embedding model to SavedModel, TFLite and ONNX, with parity gates.

Names are imported on first use: the format table (``keras_arcface.export.formats``) needs
neither Keras nor TensorFlow, so the zoo and the runtime can read it.
"""

import importlib

_NAMES = {"ParityError": "export", "export": "export", "format_results": "export", "FORMATS": "formats",
          "ExportError": "formats", "embedding_model": "source"}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f"keras_arcface.export.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'keras_arcface.export' has no attribute {name!r}")
