"""SavedModel, TFLite (float32, float16, dynamic-range int8, full int8) and ONNX writers."""

import pathlib
import re
import tempfile

from keras_arcface.errors import InputError

from keras_arcface.formats import FORMATS  # noqa: F401  (the table; re-exported here)


class ExportError(InputError, RuntimeError):
    """An export that would not work where it is going (e.g. a TFLite model needing Flex ops)."""


def write_saved_model(model, path):
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def write_tflite(model, path, quantization, representative_images=None):
    """A TFLite file using builtin ops only: Flex (Select TF) ops fail here, not on the phone.

    ``quantization``: float32, float16 (weights), dynamic_int8 (weights; activations float at
    run time) or int8 (weights and activations, calibrated on ``representative_images``,
    preprocessed float32 batches; the model keeps float32 input and output).
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        write_saved_model(model, pathlib.Path(tmp) / "sm")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(pathlib.Path(tmp) / "sm"))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "dynamic_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif quantization == "int8":
            if representative_images is None or len(representative_images) == 0:
                raise ExportError("full int8 needs representative aligned faces (faces=...)")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

            def representative():
                for image in representative_images:
                    yield [image[None].astype("float32")]

            converter.representative_dataset = representative
        elif quantization != "float32":
            raise InputError(f"unknown TFLite quantization {quantization!r}")
        try:
            flatbuffer = converter.convert()
        except Exception as error:  # the converter raises ConverterError and friends
            text = str(error)
            ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text)))
            if ops or "flex" in text.lower() or "select tf" in text.lower():
                raise ExportError(f"this model needs TensorFlow ops that TFLite has no builtin for: "
                                  f"{', '.join(ops) or 'see below'}. They would need the Flex (Select TF ops) "
                                  f"delegate, which phones do not ship; replace them. Converter: {text[:400]}") from None
            raise ExportError(f"TFLite conversion failed: {text[:800]}") from None
    pathlib.Path(path).write_bytes(flatbuffer)
    return path


def write_onnx(model, path, opset=17):
    """ONNX through Keras' exporter (tf2onnx), dynamic batch."""
    if opset < 17:
        raise InputError(f"opset {opset} is older than the supported 17")
    model.export(str(path), format="onnx", opset_version=opset, verbose=False)
    return path
