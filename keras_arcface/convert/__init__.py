"""Checkpoint converters: pretrained .onnx / .tflite face models onto our Keras backbones, parity-checked."""

import keras_arcface.runtime.keras_required  # noqa: F401  (first: without Keras, one error naming the extra)
from keras_arcface.convert.convert import PARITY_GATE, ParityError, build_converted, convert, keras_input_spec
from keras_arcface.convert.mapping import assign_weights, weighted_layers
from keras_arcface.convert.sources import ConversionError, SourceLayer, read_onnx, read_source, read_tflite

__all__ = ["PARITY_GATE", "ConversionError", "ParityError", "SourceLayer", "assign_weights", "build_converted",
           "convert", "keras_input_spec", "read_onnx", "read_source", "read_tflite", "weighted_layers"]
