"""TFLite model metadata: what an app needs to feed a face-embedding file, inside the file.

The metadata is the TFLite metadata schema's ``ModelMetadata`` flatbuffer (file identifier ``M001``,
``tensorflow/tflite-support``'s ``metadata_schema.fbs``, which MediaPipe Tasks read), stored in the
model's ``TFLITE_METADATA`` buffer.  It says: the input is an RGB image of the model's size,
normalised ``(x - mean) / std`` (MediaPipe's ``ImageEmbedder`` reads exactly this to feed the model);
the output is an embedding of N floats (L2-normalise, then the cosine); and, as the subgraph's
custom metadata ``keras_arcface`` (UTF-8 JSON), the 5-point alignment template, the input spec, the
thresholds per false-accept rate, the format and the model's name, version and licence.

Written with the ``flatbuffers`` runtime (a dependency of TensorFlow, LiteRT and onnxruntime) over the
schema's tables: MediaPipe's own writer does not import from any MediaPipe wheel since 0.10.3x (its
``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version`` is not shipped), and
``tflite-support``'s needs protobuf < 4 where TensorFlow 2.21 needs >= 6.31 (docs/on-device.md).
Metadata lives in its own buffer: the graph, and so every output, is the same with or without it
(export's parity gate runs on the file with its metadata).  It is read back without TensorFlow by
:mod:`keras_arcface.runtime.tflite_metadata` (re-exported here as ``read_metadata``).
"""

import json

import flatbuffers
import numpy as np

from keras_arcface.runtime.tflite_metadata import (  # noqa: F401  (read_metadata: re-exported with the writer)
    COLOUR_RGB,
    CUSTOM_NAME,
    FEATURE_PROPERTIES,
    IMAGE_PROPERTIES,
    METADATA_IDENTIFIER,
    METADATA_NAME,
    NORMALIZATION_OPTIONS,
    read_metadata,
)

#: The largest parser version among the fields written (custom metadata came with 1.5.0).
MIN_PARSER_VERSION = "1.5.0"


def metadata_buffer(spec, embedding_size, facts):
    """The ``ModelMetadata`` flatbuffer of a face-embedding model taking RGB ``spec.size`` images
    normalised by ``spec`` and giving ``embedding_size`` floats.  ``facts``: a JSON-able dict (name,
    version, licence, format, thresholds, ...): the custom metadata, together with the input spec."""
    if spec.colour != "RGB" or spec.layout != "NHWC":
        raise ValueError(f"TFLite metadata describes NHWC RGB input (what MediaPipe feeds), not "
                         f"{spec.layout} {spec.colour}")
    height, width = spec.size
    facts = dict(facts)
    custom = json.dumps({**facts, "input_spec": spec.to_dict(), "template": spec.landmarks.tolist(),
                         "embedding_size": int(embedding_size)}, sort_keys=True).encode()
    name = str(facts.get("name", "face embedding"))
    b = flatbuffers.Builder(1024)

    def table(fields):  # fields: [(slot, kind, value)] with kind "offset", "uint8" or "uint32"
        b.StartObject(max([slot for slot, _, _ in fields], default=-1) + 1)
        for slot, kind, value in fields:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "uint8":
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependUint32Slot(slot, value, 0)
        return b.EndObject()

    def offsets(items):
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def floats(values):
        return b.CreateNumpyVector(np.asarray(values, np.float32))

    def text(value):
        return b.CreateString(str(value))

    # input: RGB image, (x - mean) / std, its value range
    mean, std = float(spec.mean), float(spec.std)
    size = table([(0, "uint32", int(width)), (1, "uint32", int(height))])
    image = table([(0, "uint8", COLOUR_RGB), (1, "offset", size)])
    input_content = table([(0, "uint8", IMAGE_PROPERTIES), (1, "offset", image)])
    normalization = table([(0, "offset", floats([mean] * 3)), (1, "offset", floats([std] * 3))])
    unit = table([(0, "uint8", NORMALIZATION_OPTIONS), (1, "offset", normalization)])
    stats = table([(0, "offset", floats([(255.0 - mean) / std] * 3)), (1, "offset", floats([(0.0 - mean) / std] * 3))])
    input_name, input_text = text("image"), text(
        f"An aligned face: its 5 landmarks (eye centres, nose tip, mouth corners) warped by a similarity transform "
        f"onto the 5 points 'template' of the custom metadata '{CUSTOM_NAME}' (in this {width}x{height} crop's "
        f"pixels); RGB, (x - {mean:g}) / {std:g}.")
    input_tensor = table([(0, "offset", input_name), (1, "offset", input_text), (3, "offset", input_content),
                          (4, "offset", offsets([unit])), (5, "offset", stats)])
    # output: an embedding
    feature = table([])
    output_content = table([(0, "uint8", FEATURE_PROPERTIES), (1, "offset", feature)])
    output_name, output_text = text("embedding"), text(
        f"{embedding_size} floats. L2-normalise, then the cosine of two faces' vectors; the same person when it is "
        f"at least the threshold ('{CUSTOM_NAME}' thresholds, per false-accept rate).")
    output_tensor = table([(0, "offset", output_name), (1, "offset", output_text), (3, "offset", output_content)])
    # keras-arcface's facts, JSON
    b.StartVector(1, len(custom), 16)
    for byte in reversed(custom):
        b.PrependUint8(byte)
    custom_data = b.EndVector()
    custom_entry = table([(0, "offset", text(CUSTOM_NAME)), (1, "offset", custom_data)])
    subgraph = table([(0, "offset", text(name)), (2, "offset", offsets([input_tensor])),
                      (3, "offset", offsets([output_tensor])), (9, "offset", offsets([custom_entry]))])
    description = text(facts.get("description") or "Face embedding for verification and identification: an "
                       "aligned face crop in, an embedding out (keras-arcface).")
    fields = [(0, "offset", text(name)), (1, "offset", description),
              (3, "offset", offsets([subgraph])), (4, "offset", text(facts.get("author", "keras-arcface"))),
              (7, "offset", text(MIN_PARSER_VERSION))]
    if facts.get("version"):
        fields.append((2, "offset", text(facts["version"])))
    if facts.get("licence"):
        fields.append((5, "offset", text(facts["licence"])))
    b.Finish(table(fields), file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def with_metadata(model_bytes, metadata):
    """The TFLite flatbuffer ``model_bytes`` with ``metadata`` as its ``TFLITE_METADATA`` buffer (an
    earlier one replaced); operators, tensors and weight buffers are untouched."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    data = np.frombuffer(metadata, np.uint8)
    entries = [m for m in (model.metadata or []) if _text(m.name) == METADATA_NAME]
    if entries:
        model.buffers[entries[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata = list(model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _text(value):
    return value.decode() if isinstance(value, bytes) else value
