"""Reading TFLite model metadata (the ``ModelMetadata`` flatbuffer of the TFLite metadata schema in a
model's ``TFLITE_METADATA`` buffer) with the ``flatbuffers`` runtime alone: no TensorFlow, so the runtime
reads a file's input spec from it (:func:`~keras_arcface.runtime.embedder.spec_for`).  The writer is
:mod:`keras_arcface.export.tflite_metadata`."""

import json
import pathlib
import struct

import flatbuffers
import numpy as np

#: The model's metadata entry MediaPipe and LiteRT's support library look for.
METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
#: The subgraph's custom metadata entry that holds keras-arcface's facts as JSON.
CUSTOM_NAME = "keras_arcface"
COLOUR_RGB = 1  # ColorSpaceType
FEATURE_PROPERTIES, IMAGE_PROPERTIES = 1, 2  # ContentProperties union
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union


class _Table:
    """A flatbuffer table read by field slot, over ``flatbuffers.table.Table``."""

    def __init__(self, buf, pos):
        self.t = flatbuffers.table.Table(buf, pos)

    def _at(self, slot):
        return self.t.Offset(4 + 2 * slot)

    def string(self, slot):
        o = self._at(slot)
        return self.t.String(o + self.t.Pos).decode() if o else None

    def scalar(self, slot, kind):
        o = self._at(slot)
        return self.t.Get(kind, o + self.t.Pos) if o else 0

    def table(self, slot):
        o = self._at(slot)
        return _Table(self.t.Bytes, self.t.Indirect(o + self.t.Pos)) if o else None

    def tables(self, slot):
        o = self._at(slot)
        if not o:
            return []
        start = self.t.Vector(o)
        return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(self.t.VectorLen(o))]

    def array(self, slot, dtype):
        o = self._at(slot)
        if not o:
            return np.zeros(0, dtype)
        start, count = self.t.Vector(o), self.t.VectorLen(o)
        return np.frombuffer(bytes(self.t.Bytes[start:start + count * np.dtype(dtype).itemsize]), dtype)


def _root(buf):
    return _Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))


def model_metadata_bytes(model_bytes):
    """The ``TFLITE_METADATA`` buffer of a TFLite flatbuffer, or None."""
    buf = bytearray(model_bytes)
    model = _root(buf)
    buffers = model.tables(4)
    for entry in model.tables(6):  # Model.metadata: [Metadata{name, buffer}]
        if entry.string(0) == METADATA_NAME:
            data = buffers[entry.scalar(1, flatbuffers.number_types.Uint32Flags)].array(0, np.uint8)
            return data.tobytes()
    return None


def read_metadata(model_bytes):
    """The metadata of a TFLite file's bytes as a dict (``None`` without any): name, description,
    version, author, licence, min_parser_version, and per input / output tensor its name, description,
    colour space, size, mean, std; ``custom``: the ``keras_arcface`` JSON."""
    data = model_metadata_bytes(model_bytes)
    if data is None:
        return None
    if data[4:8] != METADATA_IDENTIFIER:
        raise ValueError(f"the {METADATA_NAME} buffer is not TFLite metadata (identifier {data[4:8]!r})")
    buf = bytearray(data)
    root = _root(buf)
    u8, u32 = flatbuffers.number_types.Uint8Flags, flatbuffers.number_types.Uint32Flags
    result = {"name": root.string(0), "description": root.string(1), "version": root.string(2),
              "author": root.string(4), "licence": root.string(5), "min_parser_version": root.string(7)}
    subgraph = root.tables(3)[0]
    tensors = {}
    for kind, slot in (("inputs", 2), ("outputs", 3)):
        tensors[kind] = []
        for tensor in subgraph.tables(slot):
            entry = {"name": tensor.string(0), "description": tensor.string(1)}
            content = tensor.table(3)
            if content is not None and content.scalar(0, u8) == IMAGE_PROPERTIES:
                image = content.table(1)
                size = image.table(1)
                entry.update(content="image", colour_space={1: "RGB", 2: "GRAYSCALE"}.get(image.scalar(0, u8),
                                                                                            "UNKNOWN"),
                             size=(int(size.scalar(1, u32)), int(size.scalar(0, u32))) if size else None)
            elif content is not None and content.scalar(0, u8) == FEATURE_PROPERTIES:
                entry["content"] = "feature"
            for unit in tensor.tables(4):
                if unit.scalar(0, u8) == NORMALIZATION_OPTIONS:
                    options = unit.table(1)
                    entry.update(mean=options.array(0, np.float32).tolist(), std=options.array(1, np.float32).tolist())
            tensors[kind].append(entry)
    result.update(tensors)
    for entry in subgraph.tables(9):
        if entry.string(0) == CUSTOM_NAME:
            result["custom"] = json.loads(entry.array(1, np.uint8).tobytes().decode())
    return result


def tflite_input_spec(path):
    """The input spec (as data) a TFLite file's metadata records (its ``keras_arcface`` custom metadata),
    or None for a file without."""
    try:
        metadata = read_metadata(pathlib.Path(path).read_bytes())
    except (OSError, ValueError, IndexError, KeyError, TypeError, struct.error):  # not a TFLite file of ours
        return None
    return ((metadata or {}).get("custom") or {}).get("input_spec")
