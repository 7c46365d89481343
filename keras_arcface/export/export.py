"""``export(source, formats, output_dir, faces)``: files, sidecar metadata and parity gates."""

import json
import pathlib

import numpy as np

import keras_arcface
from keras_arcface.embedding import load_keras_model
from keras_arcface.errors import InputError
from keras_arcface.export.formats import FORMATS, ExportError
from keras_arcface.export.parity import cosine_parity, exported_embeddings, keras_embeddings
from keras_arcface.files import staged_folder


class ParityError(ExportError):
    """An exported model whose embeddings differ from the Keras model's beyond its gate."""


def recorded_spec(source, model):
    """The input spec a model folder records, else the keras-arcface default for the model's size."""
    from keras_arcface.runtime import InputSpec
    from keras_arcface.runtime.embedder import folder_spec

    recorded = folder_spec(source) if isinstance(source, (str, pathlib.Path)) else None
    return recorded or InputSpec(size=tuple(model.input_shape[1:3]))


def export(source, formats, output_dir, faces, name="model", opset=17, threshold=None, source_name=None,
           input_spec=None):
    """Export the float32 embedding model of ``source`` in every format and check parity.

    ``faces``: real aligned uint8 RGB crops (N, 112, 112, 3): the parity set, and the
    calibration set for full int8.  Each file gets ``<file>.json`` (or ``saved_model.json``)
    with its input spec (the format's, :meth:`~keras_arcface.formats.ExportFormat.file_spec`: a TFLite
    file takes RGB), embedding size, format and measured parity; a TFLite file also carries them as
    TFLite metadata.  A format whose minimum
    cosine to the Keras embeddings is under its gate raises :class:`ParityError` (the file is
    removed).  ``input_spec``: how the model wants its faces (default: the ``input_spec`` of the
    source folder's ``config.json``, else NHWC RGB (x - 127.5) / 128).
    Returns {format: {"path", "min_cosine", "mean_cosine", "gate", "bytes"}}.
    """

    model = load_keras_model(source)
    spec = input_spec if input_spec is not None else recorded_spec(source, model)
    faces = np.asarray(faces)
    size = tuple(model.input_shape[1:3])
    if faces.ndim != 4 or tuple(faces.shape[1:3]) != size or faces.dtype != np.uint8:
        raise InputError(f"faces must be uint8 (N, {size[0]}, {size[1]}, 3) aligned crops, got "
                         f"{faces.dtype} {faces.shape}")
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise InputError(f"unknown export format {unknown[0]!r}; choose from {', '.join(sorted(FORMATS))}")
    output = pathlib.Path(output_dir)
    reference = keras_embeddings(model, faces, spec)
    results = {}
    # what every file's sidecar (and a TFLite file's metadata) says of where it came from
    provenance = {"keras_arcface_version": keras_arcface.__version__,
                  "source": str(source_name or (source if isinstance(source, (str, pathlib.Path))
                                                else getattr(source, "name", "model")))}
    if threshold is not None:
        provenance["threshold"] = float(threshold)
    # Every file is written and checked in a staging folder and moved into ``output`` only when all
    # formats passed: a failure (a parity gate, a converter error, a kill) leaves ``output`` as it was.
    with staged_folder(output) as staging:
        for fmt in formats:
            table_entry = FORMATS[fmt]
            gate = table_entry.parity_gate
            path = staging / table_entry.file_name(name)
            file_spec = table_entry.file_spec(spec)
            table_entry.write(model, path, spec=file_spec, model_spec=spec, faces=faces, opset=opset,
                              facts={"name": name, "format": fmt, **provenance})
            metadata = {"format": fmt, "embedding_size": int(model.output_shape[-1]), "input_spec": file_spec.to_dict(),
                        **provenance}
            metadata_path = pathlib.Path(str(path) + ".json")
            metadata_path.write_text(json.dumps(metadata, indent=1))  # the runtime reads the input spec from it
            low, mean = cosine_parity(reference, exported_embeddings(path, fmt, faces, file_spec))
            metadata["parity"] = {"min_cosine": low, "mean_cosine": mean, "gate": gate, "faces": int(len(faces))}
            metadata_path.write_text(json.dumps(metadata, indent=1))
            size_bytes = (sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir()
                          else path.stat().st_size)
            results[fmt] = {"path": str(output / path.name), "min_cosine": low, "mean_cosine": mean, "gate": gate,
                            "bytes": size_bytes}
            if low < gate:
                raise ParityError(f"{fmt}: minimum cosine to the Keras embeddings {low:.6f} is under the gate "
                                  f"{gate} on {len(faces)} faces; nothing was written to {output}")
    return results


def format_results(results):
    lines = [f"{'format':<22}{'min cosine':>12}{'mean cosine':>13}{'gate':>8}{'size':>12}  file"]
    for fmt, r in results.items():
        lines.append(f"{fmt:<22}{r['min_cosine']:>12.6f}{r['mean_cosine']:>13.6f}{r['gate']:>8}"
                     f"{r['bytes'] / 1e6:>10.2f}MB  {r['path']}")
    return "\n".join(lines)
