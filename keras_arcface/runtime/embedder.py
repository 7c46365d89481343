"""Face embeddings from exported .onnx / .tflite files; needs neither TensorFlow nor Keras."""

import contextlib
import dataclasses
import json
import os
import pathlib
import sys

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.files import CONFIG_FILE
from keras_arcface.formats import READ_ONLY_FORMATS, RUNTIME_SUFFIXES, runtime_format_of
from keras_arcface.runtime.reference import ModelReference, ReferencedEmbedder

#: The ArcFace five-point template in a 112x112 crop (left eye, right eye, nose tip, left and right
#: mouth corners; image x, y): where keras-arcface's crops and the shared data's put the landmarks.
ARCFACE_LANDMARKS = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655),
                     (70.7299, 92.2041))
ARCFACE_SIZE = (112, 112)


@dataclasses.dataclass
class InputSpec:
    """How a model wants its aligned face: size, layout, colour order, (x - mean) / std, and where its
    crop puts the five landmarks.

    The one owner of these facts: the defaults are keras-arcface's (112 x 112 NHWC RGB,
    (x - 127.5) / 128, the ArcFace template's crop); the training pipeline, the alignment size,
    export metadata and model cards all read them from here.  ``template``: five (x, y) points in
    the crop's pixels; None is the ArcFace template, scaled with the crop (an ArcFace crop resized).
    """

    size: tuple = (112, 112)
    layout: str = "NHWC"
    colour: str = "RGB"
    mean: float = 127.5
    std: float = 128.0
    template: tuple = None

    def __post_init__(self):
        self.size = tuple(int(d) for d in self.size)
        if self.layout not in ("NHWC", "NCHW") or self.colour not in ("RGB", "BGR"):
            raise InputError(f"layout must be NHWC/NCHW and colour RGB/BGR, got {self.layout}/{self.colour}")
        if self.template is not None:
            points = np.asarray(self.template, dtype=np.float64)
            if points.shape != (5, 2):
                raise InputError(f"an input spec's template is five (x, y) points, got shape {points.shape}")
            self.template = tuple(tuple(float(v) for v in point) for point in points)

    @property
    def landmarks(self):
        """The template as a (5, 2) float32 array in the crop's pixels (x, y)."""
        if self.template is not None:
            return np.asarray(self.template, np.float32)
        scale = np.array([self.size[1] / ARCFACE_SIZE[1], self.size[0] / ARCFACE_SIZE[0]])
        return (np.asarray(ARCFACE_LANDMARKS) * scale).astype(np.float32)

    def normalize(self, images_rgb):
        """RGB images (..., H, W, 3), any numeric dtype -> float32 in the model's colour order, layout
        and scale: ``(x - mean) / std`` (no shape checks: the training pipeline's path)."""
        x = np.asarray(images_rgb)
        x = x[..., ::-1] if self.colour == "BGR" else x
        x = (x.astype(np.float32) - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(np.moveaxis(x, -1, -3)) if self.layout == "NCHW" else x

    def prepare(self, faces_rgb_uint8):
        """Aligned uint8 RGB faces (N, H, W, 3) or one face, checked against the spec, normalised."""
        faces = np.asarray(faces_rgb_uint8)
        if faces.ndim == 3:
            faces = faces[None]
        if faces.ndim != 4 or faces.shape[-1] != 3:
            raise InputError(f"faces must be (N, H, W, 3) RGB uint8, got shape {faces.shape}")
        if faces.dtype != np.uint8:
            raise InputError(f"faces must be uint8 RGB, got dtype {faces.dtype}")
        if tuple(faces.shape[1:3]) != tuple(self.size):
            if tuple(faces.shape[1:3]) != ARCFACE_SIZE:
                raise InputError(f"faces must be aligned {self.size[0]}x{self.size[1]} crops (or ArcFace "
                                 f"{ARCFACE_SIZE[0]}x{ARCFACE_SIZE[1]} crops, mapped onto the model's), got "
                                 f"{faces.shape[1]}x{faces.shape[2]}")
            faces = self.from_arcface_crops(faces)
        return np.ascontiguousarray(self.normalize(faces))

    def from_arcface_crops(self, faces):
        """ArcFace 112x112 crops (N, 112, 112, 3), the common currency (the shared data's, the demo's,
        most aligners'), as this spec's crops: mapped onto its template by the least-squares similarity
        between the two templates (:func:`~keras_arcface.runtime.crops.recrop`), as they are when the spec's
        crop is ArcFace's."""
        from keras_arcface.runtime.crops import recrop

        return recrop(faces, DEFAULT_SPEC, self)

    def aligned_crop(self, image):
        """An image as this spec's aligned crop: as it is when it has the spec's size, mapped by
        :meth:`from_arcface_crops` when it is an ArcFace 112x112 crop, None for any other size."""
        shape = tuple(np.shape(image)[:2])
        if shape == tuple(self.size):
            return image
        return self.from_arcface_crops(np.asarray(image)[None])[0] if shape == ARCFACE_SIZE else None

    def to_dict(self):
        """The spec as plain data (model cards, export metadata, ``config.json``); ``template`` only
        where it is not the ArcFace one (files written before it existed read the same)."""
        data = {**dataclasses.asdict(self), "size": list(self.size)}
        if self.template is None:
            del data["template"]
        else:
            data["template"] = [list(point) for point in self.template]
        return data


#: keras-arcface's own input: what the training pipeline feeds and what its models record.
DEFAULT_SPEC = InputSpec()


#: Intel's five-point template for face-reidentification-retail-0095, given in [0, 1] crop coordinates
#: by its Open Model Zoo documentation, here in the pixels of its 128x128 crop.
INTEL_RETAIL_LANDMARKS = tuple((x * 128, y * 128) for x, y in (
    (0.31556875, 0.46157411), (0.68262292, 0.46157411), (0.50026250, 0.64050536), (0.34947188, 0.82469196),
    (0.65343646, 0.82469196)))

#: Input specs of known model files (matched by file name), from their documentation.
KNOWN_SPECS = {
    "face_recognition_sface": InputSpec(layout="NCHW", colour="RGB", mean=0.0, std=1.0),
    "MobileFaceNet.tflite": InputSpec(layout="NHWC", colour="RGB", mean=127.5, std=128.0),
    "fr_feature": InputSpec(layout="NCHW", colour="RGB", mean=127.0, std=128.0),
    # InsightFace's arcface_torch exports (its ArcFaceONNX: RGB, (x - 127.5) / 127.5 outside the graph)
    "w600k_r50": InputSpec(layout="NCHW", colour="RGB", mean=127.5, std=127.5),
    "glintr100": InputSpec(layout="NCHW", colour="RGB", mean=127.5, std=127.5),
    # Intel's Open Model Zoo IR (its documentation: 128x128 BGR, raw 0..255; it scales in the graph)
    "face-reidentification-retail-0095": InputSpec(size=(128, 128), layout="NCHW", colour="BGR", mean=0.0, std=1.0,
                                                   template=INTEL_RETAIL_LANDMARKS),
}


def spec_for(path, spec=None):
    """The explicit spec, else the sidecar ``<file>.json`` ``input_spec``, else a TFLite file's own metadata
    (:mod:`~keras_arcface.runtime.tflite_metadata`), else a known name, else the keras-arcface default (NHWC
    RGB (x - 127.5) / 128)."""
    if spec is not None:
        return spec if isinstance(spec, InputSpec) else InputSpec(**spec)
    metadata = read_metadata(path)
    if "input_spec" in metadata:
        return InputSpec(**metadata["input_spec"])
    if str(path).lower().endswith(".tflite"):
        from keras_arcface.runtime.tflite_metadata import tflite_input_spec

        recorded = tflite_input_spec(path)
        if recorded:
            return InputSpec(**recorded)
    for key, known in KNOWN_SPECS.items():
        if key in pathlib.Path(path).name:
            return known
    return InputSpec()


def folder_spec(path):
    """The ``input_spec`` a model folder's ``config.json`` records (a converted model keeps its
    source's normalisation), for the folder itself or a file in it; None when there is none."""
    path = pathlib.Path(path)
    config = (path if path.is_dir() else path.parent) / CONFIG_FILE
    recorded = json.loads(config.read_text()).get("input_spec") if config.is_file() else None
    return InputSpec(**recorded) if recorded else None


def read_metadata(path):
    sidecar = pathlib.Path(str(path) + ".json")
    return json.loads(sidecar.read_text()) if sidecar.is_file() else {}


@contextlib.contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for the block: native libraries' start-up lines (LiteRT's
    "Created TensorFlow Lite XNNPACK delegate", TensorFlow's oneDNN / CUDA notes) bypass Python.
    Python exceptions raised in the block are unaffected."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def l2_normalize(x):
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def flip_averaged(embed, faces, **options):
    """Test-time flip (the evaluation of the ArcFace paper's tables): the unit vector along the sum
    of a face's unit embedding and its mirror image's, ``l2(embed(x) + embed(mirror(x)))``, at twice
    the cost.  ``embed``: faces (N, H, W, 3) -> unit embeddings."""
    faces = np.asarray(faces)
    faces = faces[None] if faces.ndim == 3 else faces
    return l2_normalize(embed(faces, **options) + embed(faces[:, :, ::-1], **options))


class FaceEmbedder(ReferencedEmbedder):
    """Embeddings of aligned uint8 RGB faces from a .onnx (onnxruntime) or .tflite (LiteRT) file, or an
    OpenVINO IR .xml (the ``openvino`` package, in the ``convert`` extra).

    ``embed(faces)`` returns L2-normalised float32 (N, d).  ``reference`` (a
    :class:`~keras_arcface.runtime.reference.ModelReference`: name, input spec, thresholds per FAR, licence,
    where the file came from) is given by the zoo's loader, else read from the file's sidecar ``<file>.json``;
    ``spec`` overrides its input spec.  Fixed-batch models (e.g. a TFLite file exported with batch 2) are fed
    in padded chunks.  ``flip=True`` embeds each face with its mirror image (:func:`flip_averaged`).
    """

    def __init__(self, path, spec=None, threads=None, flip=False, reference=None):
        self.path = str(path)
        self.flip = bool(flip)
        if not pathlib.Path(self.path).is_file():
            raise FileNotFoundError(f"model file not found: {self.path}")
        if reference is None:
            reference = ModelReference.from_sidecar(self.path, spec_for(self.path, spec), read_metadata(self.path))
        self.reference = reference.with_spec(spec)
        fmt = runtime_format_of(self.path)
        if fmt is None:
            raise InputError(f"unsupported model file {self.path}: expected "
                             f"{' or '.join(sorted({*RUNTIME_SUFFIXES, *READ_ONLY_FORMATS}))}")
        try:
            self._run, self.fixed_batch = fmt.open(self.path, threads)
        except InputError:
            raise
        except Exception as error:  # the runtimes raise their own types for corrupt files
            detail = " ".join(str(error).split())[:200]
            article = "an" if fmt.family[0] in "AEIOU" else "a"
            raise InputError(f"cannot load {self.path} as {article} {fmt.family} model ({type(error).__name__}: "
                             f"{detail}); the file may be truncated or of another kind: download or export it again"
                             ) from None

    def raw(self, faces_rgb_uint8, batch_size=32):
        """The model's output, not normalised."""
        x = self.spec.prepare(faces_rgb_uint8)
        step = self.fixed_batch or batch_size
        outputs = []
        for start in range(0, len(x), step):
            chunk = x[start:start + step]
            if self.fixed_batch and len(chunk) < self.fixed_batch:
                pad = np.repeat(chunk[-1:], self.fixed_batch - len(chunk), axis=0)
                outputs.append(self._run(np.concatenate([chunk, pad]))[:len(chunk)])
            else:
                outputs.append(self._run(chunk))
        return np.concatenate(outputs).astype(np.float32)

    def embed(self, faces_rgb_uint8, batch_size=32):
        if self.flip:
            return flip_averaged(self._embed_as_is, faces_rgb_uint8, batch_size=batch_size)
        return self._embed_as_is(faces_rgb_uint8, batch_size)

    def _embed_as_is(self, faces_rgb_uint8, batch_size=32):
        return l2_normalize(self.raw(faces_rgb_uint8, batch_size))


def open_onnx(path, threads=None):
    """The ONNX reader of the format table: (run(prepared batch) -> outputs, fixed batch or None)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = session.get_inputs()[0].shape[0]
    return (lambda x: session.run(None, {name: x})[0]), batch if isinstance(batch, int) else None


def import_openvino(path, error=InputError):
    """The ``openvino`` module, or ``error`` naming ``path`` and the pip extra the format table gives."""
    try:
        import openvino
    except ImportError:
        raise error(f"{path}: an OpenVINO IR needs the openvino package: pip install "
                    f"'keras-arcface[{READ_ONLY_FORMATS['.xml'].extra}]'") from None
    return openvino


def open_openvino(path, threads=None):
    """The OpenVINO IR reader (:data:`~keras_arcface.formats.READ_ONLY_FORMATS`): the IR compiled for the
    CPU in float32 (not the CPU's default bf16 / f16 where it has them: it is the reference a
    conversion is checked against)."""
    core = import_openvino(path).Core()
    model = core.read_model(str(path))
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = core.compile_model(model, "CPU", config)
    request, output = compiled.create_infer_request(), compiled.outputs[0]
    batch = model.inputs[0].get_partial_shape()[0]
    return (lambda x: np.asarray(request.infer({0: x})[output]).reshape(len(x), -1)), (
        batch.get_length() if batch.is_static else None)


def open_tflite(path, threads=None):
    """The TFLite reader of the format table (LiteRT): (run(prepared batch) -> outputs, fixed batch or None)."""
    from ai_edge_litert.interpreter import Interpreter

    with native_stderr_silenced():
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    fixed = int(inp["shape"][0]) if inp["shape_signature"][0] != -1 else None
    state = {"batch": fixed}

    def run(x):
        if state["batch"] != len(x):
            interpreter.resize_tensor_input(inp["index"], x.shape)
            interpreter.allocate_tensors()
            state["batch"] = len(x)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]) if inp["dtype"] == np.float32 else x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return run, fixed
