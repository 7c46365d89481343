"""The export formats: one table, read by the exporter, the runtime, the zoo's cards and the command
line.  An entry names how its file is called, how close it must stay to the Keras model, and the
functions that write it and read it back (``"module:function"``, imported only when used), so a new
format is one entry here plus its writer and reader.  Imports nothing heavy (the zoo and the runtime
read it without Keras or TensorFlow)."""

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One export format.

    ``family``: what the file is, in words ("cannot load X as a TFLite model"); ``suffix``: the
    file's suffix ("" writes a folder); ``parity_gate``: the minimum cosine between its embeddings
    and the Keras model's on real faces; ``writer``: ``writer(model, path, spec=, faces=,
    opset=, **options)`` writes it; ``reader``: ``reader(path, threads) -> (run, fixed_batch)`` runs
    it on prepared input; ``runtime``: the Keras-free runtime (:class:`~keras_arcface.runtime.FaceEmbedder`)
    reads it, so it can ship to a device and be a zoo artifact; ``full_speed``: it runs on the CPU's
    fast float path (XNNPACK for TFLite); False for both int8 TFLite kinds, which run LiteRT's own
    int8 kernels here (dynamic-range int8's hybrid ops, full int8's PReLU) and measured 1.2x to 6x
    slower than float32 on this CPU (docs/pretrained.md#speed-and-size), so a zoo card's runtime file
    is one of them only when no full-speed file passes its gates.  ``colour``: the colour order the file
    takes whatever the model's ("RGB" for TFLite: MediaPipe's ``ImageEmbedder`` feeds RGB and TFLite
    metadata cannot say BGR, so a BGR model's file reverses the channels as its first op); None keeps
    the model's.
    """

    name: str
    family: str
    suffix: str
    parity_gate: float
    writer: str
    reader: str
    runtime: bool = True
    options: tuple = ()
    full_speed: bool = True
    colour: str = None

    def file_name(self, model_name):
        return f"{model_name}_{self.name}{self.suffix}"

    def file_spec(self, spec):
        """The input spec of this format's file of a model whose input spec is ``spec``."""
        if self.colour is None or spec.colour == self.colour:
            return spec
        return dataclasses.replace(spec, colour=self.colour)

    def write(self, model, path, **context):
        return _resolve(self.writer)(model, path, **context, **dict(self.options))

    def open(self, path, threads=None):
        return _resolve(self.reader)(path, threads)


def _resolve(reference):
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


_WRITERS = "keras_arcface.export.formats"
_RUNTIME = "keras_arcface.runtime.embedder"

_WRITE_TFLITE, _READ_TFLITE = f"{_WRITERS}:write_tflite", f"{_RUNTIME}:open_tflite"

#: format name -> :class:`ExportFormat`.
FORMATS = {fmt.name: fmt for fmt in (
    ExportFormat("saved_model", "SavedModel", "", 0.9999, f"{_WRITERS}:write_saved_model",
                 f"{_WRITERS}:open_saved_model", runtime=False),
    ExportFormat("tflite_float32", "TFLite", ".tflite", 0.9999, _WRITE_TFLITE, _READ_TFLITE,
                 options=(("quantization", "float32"),), colour="RGB"),
    ExportFormat("tflite_float16", "TFLite", ".tflite", 0.999, _WRITE_TFLITE, _READ_TFLITE,
                 options=(("quantization", "float16"),), colour="RGB"),
    ExportFormat("tflite_dynamic_int8", "TFLite", ".tflite", 0.99, _WRITE_TFLITE, _READ_TFLITE,
                 options=(("quantization", "dynamic_int8"),), full_speed=False, colour="RGB"),
    ExportFormat("tflite_int8", "TFLite", ".tflite", 0.99, _WRITE_TFLITE, _READ_TFLITE,
                 options=(("quantization", "int8"),), full_speed=False, colour="RGB"),
    ExportFormat("onnx", "ONNX", ".onnx", 0.9999, f"{_WRITERS}:write_onnx", f"{_RUNTIME}:open_onnx"),
)}

#: file suffix -> the format the runtime reads such a file as (formats sharing a suffix share a reader).
RUNTIME_SUFFIXES = {fmt.suffix: fmt for fmt in reversed(FORMATS.values()) if fmt.runtime}


@dataclasses.dataclass(frozen=True)
class ReadOnlyFormat:
    """A model file the runtime runs but keras-arcface does not write: a converter's source, run as the
    original by the parity check, ``eval`` and the benchmarks.  ``extra``: the pip extra of its reader."""

    name: str
    family: str
    suffix: str
    reader: str
    extra: str

    def open(self, path, threads=None):
        return _resolve(self.reader)(path, threads)


#: file suffix -> :class:`ReadOnlyFormat`.
READ_ONLY_FORMATS = {fmt.suffix: fmt for fmt in (
    ReadOnlyFormat("openvino", "OpenVINO IR", ".xml", f"{_RUNTIME}:open_openvino", "convert"),
)}


def runtime_format_of(path):
    """The format (:class:`ExportFormat` or :class:`ReadOnlyFormat`) the runtime reads ``path`` as (by
    suffix), or None."""
    import pathlib

    suffix = pathlib.Path(path).suffix.lower()
    return RUNTIME_SUFFIXES.get(suffix) or READ_ONLY_FORMATS.get(suffix)


def is_runtime_file(path):
    """True for a file the Keras-free runtime reads (an .onnx or .tflite file, or an OpenVINO IR .xml, as
    the tables say)."""
    return runtime_format_of(path) is not None
