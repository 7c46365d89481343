"""Give every TFLite file of the zoo its TFLite metadata (the card's facts) and the input MediaPipe feeds.

    python scripts/stamp_zoo_tflite.py all --shared ../shared
    python scripts/stamp_zoo_tflite.py face-reidentification-retail-0095 --shared ../shared

For each card's TFLite artifacts in ``saved_models/<name>/``:

1. A file whose input is not what its format's file takes (:meth:`ExportFormat.file_spec`: a BGR
   model's TFLite file takes RGB) is exported again from the model folder (``keras_arcface.export``,
   parity-gated on the 400 LFW faces the zoo entry was built with) and must give the old file's
   embeddings on those faces (each fed in its own colour order; minimum cosine >= 0.99999), so the
   card's measured figures hold for it.
2. The card's facts (name, version, licence, thresholds per false-accept rate, the input spec and
   template) are written into the file as TFLite metadata (:mod:`keras_arcface.export.tflite_metadata`);
   the file's outputs on random inputs are checked bit for bit against the file before.
3. The card's artifact entry gets the new size and sha256 (and the file's input spec where it differs
   from the card's).

Run ``scripts/record_card_checks.py`` on the changed cards afterwards, and the slow tier.
"""

import argparse
import json
import pathlib
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import build_zoo_entry  # noqa: E402

from keras_arcface.alignment.warp import sample_faces_for  # noqa: E402
from keras_arcface.export.export import export  # noqa: E402
from keras_arcface.export.tflite_metadata import metadata_buffer, with_metadata  # noqa: E402
from keras_arcface.formats import FORMATS  # noqa: E402
from keras_arcface.runtime import FaceEmbedder, InputSpec  # noqa: E402
from keras_arcface.zoo import list_models, model_card  # noqa: E402
from keras_arcface.zoo.build import artifact_entry  # noqa: E402

MIN_COSINE_TO_THE_OLD_FILE = 0.99999


def card_facts(card, fmt):
    """What the ``fmt`` file of ``card`` says about itself in its metadata."""
    thresholds = card.thresholds(fmt)
    return {"name": card.name, "version": card.version, "format": fmt, "description": card.summary,
            "licence": f"weights: {card.licence.get('weights')}; training data: {card.licence.get('training_data')}",
            "commercial_use": card.commercial_use, "threshold": thresholds["threshold"],
            "threshold_source": thresholds["source"], "far_thresholds": thresholds["far"],
            "far_source": thresholds["far_source"], "source": "keras-arcface zoo"}


def measured_again(path, fmt, shared, parity, previous):
    """``previous`` (a card's LFW entry) with the figures of the file at ``path`` measured again."""
    print(f"{fmt}: LFW was {previous['accuracy_mean'] * 100:.2f}", flush=True)
    return {**previous, **build_zoo_entry.lfw_metric(path, fmt, pathlib.Path(shared) / "data", parity)}


def stamp(name, shared, saved_models=ROOT / "saved_models", cards=ROOT / "zoo"):
    card = model_card(name)
    folder = pathlib.Path(saved_models) / name
    model_spec = InputSpec(**card.input_spec)
    data = json.loads((pathlib.Path(cards) / f"{name}.json").read_text())
    measured = []
    for fmt in [f for f in card.artifacts if FORMATS.get(f) and FORMATS[f].family == "TFLite"]:
        path = folder / card.artifact(fmt).file
        file_spec = FORMATS[fmt].file_spec(model_spec)
        if InputSpec(**card.file_spec(fmt)) != file_spec:
            faces = sample_faces_for(pathlib.Path(shared) / "data" / "lfw" / "aligned", 400, model_spec)
            old = FaceEmbedder(path, spec=InputSpec(**card.file_spec(fmt))).embed(faces)
            with tempfile.TemporaryDirectory() as tmp:
                result = export(folder, [fmt], tmp, faces, name=name, source_name=name)[fmt]
                new_path = pathlib.Path(tmp) / path.name
                new = FaceEmbedder(new_path, spec=file_spec).embed(faces)
                low = float(np.sum(old * new, axis=1).min())
                print(f"{name} {fmt}: exported again taking {file_spec.colour}; parity {result['min_cosine']:.7f}, "
                      f"to the old file {low:.7f} on {len(faces)} LFW faces", flush=True)
                if low < MIN_COSINE_TO_THE_OLD_FILE:
                    if low < FORMATS[fmt].parity_gate:
                        raise SystemExit(f"{name} {fmt}: the new file differs from the old one (min cosine {low})")
                    # a quantised file quantised again: its own LFW figures, measured again
                    measured.append(fmt)
                    data["metrics"] = [measured_again(new_path, fmt, shared, round(result["min_cosine"], 6), m)
                                       if m.get("benchmark") == "LFW" and m.get("artifact") == fmt else m
                                       for m in data["metrics"]]
                    if card.origin:  # its parity to the original file, on the same faces
                        converted = json.loads((folder / "config.json").read_text())["converted_from"]
                        original = FaceEmbedder(pathlib.Path(shared) / "models" / converted["file"],
                                                spec=InputSpec(**converted["input_spec"])).embed(faces)
                        to_original = round(float(np.sum(original * new, axis=1).min()), 7)
                        print(f"{name} {fmt}: to the original file {to_original}", flush=True)
                        data["origin"]["parity_to_original"]["min_cosine"][fmt] = to_original
                        for m in data["metrics"]:
                            if m.get("benchmark") == "LFW" and m.get("artifact") == fmt:
                                m["parity_to_original_min_cosine"] = to_original
                path.write_bytes(new_path.read_bytes())
                pathlib.Path(f"{path}.json").write_text(pathlib.Path(f"{new_path}.json").read_text())
        before = path.read_bytes()
        stamped = with_metadata(before, metadata_buffer(file_spec, card.embedding_size, card_facts(card, fmt)))
        probe = np.random.default_rng(0).uniform(-2, 2, (2, *file_spec.size, 3)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            candidate = pathlib.Path(tmp) / path.name
            candidate.write_bytes(stamped)
            run = FORMATS[fmt].open  # the runtime's reader: (run(prepared batch), fixed batch)
            if not np.array_equal(run(path)[0](probe), run(candidate)[0](probe)):
                raise SystemExit(f"{name} {fmt}: the metadata changed the file's outputs")
        path.write_bytes(stamped)
        entry = artifact_entry(path, card.input_spec)
        data["artifacts"][fmt] = entry
        (pathlib.Path(cards) / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")  # file and card agree
        print(f"{name} {fmt}: metadata written ({len(before)} -> {len(stamped)} bytes)", flush=True)
    if measured:
        print(f"{name}: LFW measured again for {measured}; now measure their thresholds per FAR "
              f"(scripts/card_far_thresholds.py --cards {name} --formats {' '.join(measured)}) and run this "
              "script again to write them into the files", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a zoo model's name, or all")
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"),
                        help="the shared folder (its LFW crops are the parity faces of a file exported again)")
    args = parser.parse_args(argv)
    for name in list_models(include_examples=True) if args.name == "all" else [args.name]:
        stamp(name, args.shared)


if __name__ == "__main__":
    main()
