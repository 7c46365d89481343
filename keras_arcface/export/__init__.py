"""Export the embedding model to SavedModel, TFLite and ONNX, with parity gates."""

import keras_arcface.runtime.keras_required  # noqa: F401  (first: without Keras, one error naming the extra)
from keras_arcface.export.export import ParityError, export, format_results
from keras_arcface.export.formats import FORMATS, ExportError

__all__ = ["FORMATS", "ExportError", "ParityError", "export", "format_results"]
