"""The export formats and their parity gates: one table, read by the exporter, the zoo's cards and
the command line.  Imports nothing heavy (the zoo reads it without Keras or TensorFlow)."""

#: format name -> (file suffix, cosine-parity gate against the Keras model)
FORMATS = {
    "saved_model": ("", 0.9999),
    "tflite_float32": (".tflite", 0.9999),
    "tflite_float16": (".tflite", 0.999),
    "tflite_dynamic_int8": (".tflite", 0.99),
    "tflite_int8": (".tflite", 0.99),
    "onnx": (".onnx", 0.9999),
}
