"""``convert(source, backbone, output_dir, faces)``: a pretrained .onnx / .tflite face model as one of
our Keras backbones, with its parity proven on real faces before anything is written."""

import hashlib
import json
import os
import pathlib

import numpy as np

from keras_arcface.convert.mapping import assign_weights
from keras_arcface.convert.sources import ConversionError, read_source
from keras_arcface.errors import InputError
from keras_arcface.files import BACKBONE_WEIGHTS, CONFIG_FILE, staged_folder

#: Minimum cosine between the source's and the Keras model's embeddings on every face.
PARITY_GATE = 0.9999
#: The file a conversion writes besides the weights (read back by :func:`keras_arcface.embedding.load_keras_model`).


class ParityError(ConversionError):
    """The converted model's embeddings differ from the source's beyond the gate."""


def _embedding_size(layers):
    last = layers[-1]
    if last.kind in ("conv", "dense"):
        return int(last.weights["kernel"].shape[-1])
    if last.kind == "batch_norm":
        return int(np.shape(last.weights["mean"])[0])
    raise ConversionError(f"cannot tell the embedding size from the source's last layer {last.describe()}")


def keras_input_spec(source_spec, spec_changes):
    """The NHWC spec of the Keras model: the source's spec with its in-graph scalar normalisation folded in."""
    from keras_arcface.runtime import InputSpec

    mean = source_spec.mean + spec_changes.get("mean", 0.0) * source_spec.std
    std = source_spec.std * spec_changes.get("std", 1.0)
    return InputSpec(size=source_spec.size, layout="NHWC", colour=source_spec.colour, mean=float(mean),
                     std=float(std), template=source_spec.template)


def build_converted(source, backbone, backbone_params=None, embedding_size=None):
    """(Keras backbone with the source's weights, its InputSpec, the source's spec); no parity check."""
    from keras_arcface.backbones import get_backbone
    from keras_arcface.runtime import spec_for

    layers, spec_changes = read_source(source)
    if not layers:
        raise ConversionError(f"{source}: no weighted layers found")
    source_spec = spec_for(source)
    spec = keras_input_spec(source_spec, spec_changes)
    size = embedding_size or _embedding_size(layers)
    model = get_backbone(backbone, embedding_size=size, input_shape=(*spec.size, 3), **(backbone_params or {}))
    assign_weights(model, layers)
    return model, spec, source_spec


def parity(source, model, spec, source_spec, faces):
    """(min, mean) cosine between the source run by its runtime and the Keras model, on ``faces``."""
    from keras_arcface.runtime import FaceEmbedder, KerasEmbedder

    reference = FaceEmbedder(source, spec=source_spec).embed(faces)
    ours = KerasEmbedder(model, spec=spec).embed(faces)
    cosines = np.sum(reference * ours, axis=1)
    return float(cosines.min()), float(cosines.mean())


def convert(source, backbone, output_dir, faces, backbone_params=None, embedding_size=None, gate=PARITY_GATE,
            weights_dtype="float32", num_faces=400):
    """Convert ``source`` onto ``backbone`` and write ``output_dir`` (``backbone.weights.h5`` and
    ``config.json``) only if the parity gate holds on ``faces``: aligned uint8 RGB crops, or a
    folder ``<identity>/<image>`` from which ``num_faces`` crops of the source's size are drawn, or
    ArcFace 112x112 crops mapped onto the source's template (after the source has been read, so a
    bad source is reported first).

    ``weights_dtype="float16"`` stores the weights in half precision (half the file) after checking
    that parity still holds with them.  Returns the config written.  Raises :class:`ParityError`
    (nothing written) when the minimum cosine is under ``gate``, :class:`ConversionError` when the
    source does not fit the backbone.
    """
    if weights_dtype not in ("float32", "float16"):
        raise InputError(f"weights_dtype must be float32 or float16, got {weights_dtype!r}")
    model, spec, source_spec = build_converted(source, backbone, backbone_params, embedding_size)
    if isinstance(faces, (str, pathlib.Path)):
        from keras_arcface.alignment import sample_faces_for

        faces = sample_faces_for(faces, num_faces, source_spec)
    faces = np.asarray(faces)
    if faces.ndim != 4 or len(faces) == 0 or faces.dtype != np.uint8:
        raise ConversionError(f"parity needs aligned uint8 faces (N, H, W, 3), got {faces.dtype} {faces.shape}")
    if weights_dtype == "float16":  # check parity with the weights as they will be stored
        model.set_weights([w.astype("float16").astype("float32") for w in model.get_weights()])
    low, mean = parity(source, model, spec, source_spec, faces)
    if low < gate:
        raise ParityError(f"{source}: minimum cosine between the source and the converted {backbone} is "
                          f"{low:.6f} on {len(faces)} faces, under the gate {gate}; nothing was written")
    source_path = pathlib.Path(source)
    config = {
        "backbone": backbone, "backbone_params": dict(backbone_params or {}),
        "embedding_size": int(model.output_shape[-1]), "image_size": int(spec.size[0]),
        "input_spec": spec.to_dict(),
        "converted_from": {"file": source_path.name, "format": source_path.suffix.lstrip(".").lower(),
                           "sha256": hashlib.sha256(source_path.read_bytes()).hexdigest(),
                           "input_spec": source_spec.to_dict(), **_companion_files(source_path)},
        "parity": {"min_cosine": low, "mean_cosine": mean, "gate": gate, "faces": int(len(faces)),
                   "weights_dtype": weights_dtype},
    }
    _write_atomically(pathlib.Path(output_dir), model, config, weights_dtype)
    return config


def _companion_files(source_path):
    """The files a source reads besides itself (an OpenVINO IR's .bin), by name and sha256."""
    weights = source_path.with_suffix(".bin")
    if source_path.suffix.lower() != ".xml" or not weights.is_file():
        return {}
    return {"weights_file": weights.name, "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def _write_atomically(output, model, config, weights_dtype):
    """Write into a temporary folder beside ``output``, then move the files in: a failure leaves nothing."""
    with staged_folder(output) as staging:
        model.save_weights(staging / BACKBONE_WEIGHTS)
        if weights_dtype == "float16":
            _halve_weights_file(staging / BACKBONE_WEIGHTS)
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")


def _halve_weights_file(path):
    """Rewrite a ``.weights.h5`` file with every float32 array as float16 (Keras casts back when loading)."""
    import h5py

    halved = path.with_name(path.name + ".f16")
    with h5py.File(path, "r") as source, h5py.File(halved, "w") as target:
        target.attrs.update(dict(source.attrs))

        def copy(name, item):
            if isinstance(item, h5py.Group):
                target.require_group(name).attrs.update(dict(item.attrs))
            else:
                data = item[()]
                if getattr(data, "dtype", None) == np.float32:
                    data = data.astype(np.float16)
                target.create_dataset(name, data=data).attrs.update(dict(item.attrs))

        source.visititems(copy)
    os.replace(halved, path)
