"""The writers (and the SavedModel reader) that the format table (:mod:`keras_arcface.formats`) names:
SavedModel, TFLite (float32, float16, dynamic-range int8, full int8) and ONNX.  Every writer takes
``(model, path, **context)``; the context is ``spec`` (the input spec), ``faces`` (aligned uint8
crops) and ``opset``, and each writer reads what it needs."""

import pathlib
import re
import tempfile

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.formats import FORMATS  # noqa: F401  (the table; re-exported here)


class ExportError(InputError, RuntimeError):
    """An export that would not work where it is going (e.g. a TFLite model needing Flex ops)."""


def write_saved_model(model, path, **context):
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def open_saved_model(path, threads=None):
    """The SavedModel reader of the format table (TensorFlow): (run(prepared batch), no fixed batch)."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return (lambda x: np.asarray(loaded.serve(x))), None


def write_tflite(model, path, quantization, representative_images=None, spec=None, faces=None, model_spec=None,
                 facts=None, **context):
    """A TFLite file using builtin ops only: Flex (Select TF) ops fail here, not on the phone.

    ``spec``: the file's input spec; ``model_spec``: the model's, where it differs (a BGR model's file
    takes RGB, :meth:`~keras_arcface.formats.ExportFormat.file_spec`: the file reverses the channels as
    its first op).  With a ``spec`` the file carries TFLite metadata saying how to feed it and what it
    gives (:mod:`keras_arcface.export.tflite_metadata`; ``facts``: its name, version, licence,
    thresholds, ...), which MediaPipe's ``ImageEmbedder`` reads.

    ``quantization``: float32, float16 (weights), dynamic_int8 (weights; activations float at
    run time) or int8 (weights and activations, calibrated on ``representative_images``,
    preprocessed float32 batches for the model, by default ``model_spec.prepare(faces)``; the file keeps
    float32 input and output).  Both int8 kinds first equalise the model's activation ranges on those
    images where they are given (:mod:`keras_arcface.export.equalize`: the same function, channels that
    one int8 scale per tensor keeps).
    """
    import tensorflow as tf

    from keras_arcface.export.equalize import equalized_copy

    model_spec = model_spec or spec
    if representative_images is None and model_spec is not None and faces is not None:
        representative_images = model_spec.prepare(faces)
    if quantization in ("dynamic_int8", "int8") and representative_images is not None \
            and len(representative_images):
        model = equalized_copy(model, representative_images)
    if spec is not None and spec.colour != model_spec.colour:
        model = _channels_reversed_first(model)
        if representative_images is not None:
            representative_images = np.ascontiguousarray(np.asarray(representative_images)[..., ::-1])

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
                                  f"delegate, which phones do not ship; replace them. Converter: {text[:400]}"
                                  ) from None
            raise ExportError(f"TFLite conversion failed: {text[:800]}") from None
    if spec is not None:
        from keras_arcface.export.tflite_metadata import metadata_buffer, with_metadata

        facts = {"format": f"tflite_{quantization}", **(facts or {})}
        flatbuffer = with_metadata(flatbuffer, metadata_buffer(spec, int(model.output_shape[-1]), facts))
    pathlib.Path(path).write_bytes(flatbuffer)
    return path


def _channels_reversed_first(model):
    """``model`` behind a reversal of the colour channels: it takes RGB where ``model`` takes BGR."""
    import keras

    inputs = keras.Input(shape=model.input_shape[1:], name="image_rgb")
    return keras.Model(inputs, model(keras.ops.flip(inputs, axis=-1)), name=f"{model.name}_rgb")


def write_onnx(model, path, opset=17, **context):
    """ONNX through Keras' exporter (tf2onnx), dynamic batch."""
    if opset < 17:
        raise InputError(f"opset {opset} is older than the supported 17")
    model.export(str(path), format="onnx", opset_version=opset, verbose=False)
    return path
