"""Export the embedding model to SavedModel, TFLite and ONNX, with parity gates."""

from keras_arcface.export.export import ParityError, export, format_results
from keras_arcface.export.formats import FORMATS, ExportError
from keras_arcface.export.source import embedding_model

__all__ = ["FORMATS", "ExportError", "ParityError", "embedding_model", "export", "format_results"]
