"""Every model card in zoo/ against the files it names in saved_models/, and card validation."""

import hashlib
import json
import pathlib

import pytest

from keras_arcface.runtime import InputSpec
from keras_arcface.zoo import ARTIFACT_FORMATS, CardError, ModelCard, card_from_folder, default_by_rule, read_cards
from keras_arcface.zoo.cards import HOLDOUT_BENCHMARK

ROOT = pathlib.Path(__file__).resolve().parents[2]
CARDS = read_cards(ROOT / "zoo")
SAVED = ROOT / "saved_models"


def test_there_is_exactly_one_default_card():
    assert CARDS, "the zoo has no model cards"
    assert len([card for card in CARDS.values() if card.default]) == 1


def test_the_default_card_is_the_one_the_rule_picks():
    """docs/zoo.md's rule, applied to the cards' own figures, names the card marked default (the wheel's
    bundled file, demo, verify and FaceVerifier() all follow that mark)."""
    assert [name for name, card in CARDS.items() if card.default] == [default_by_rule(CARDS)]


def _rule_card(name, lfw, holdout, milliseconds, commercial=True):
    """sface's card renamed, its LFW figures set to ``lfw``, its runtime file's hold-out and latency set."""
    data = json.loads((ROOT / "zoo" / "sface.json").read_text())
    data.update(name=name, default=False)
    data["licence"] = {**data["licence"], "commercial_use": commercial}
    runtime = ModelCard.from_data(data).runtime_format()
    data["metrics"] = [{**m, "accuracy_mean": lfw} for m in data["metrics"] if m["benchmark"] == "LFW"]
    if holdout is not None:
        data["metrics"].append({"benchmark": HOLDOUT_BENCHMARK, "protocol": "test", "artifact": runtime,
                                "accuracy_mean": holdout, "accuracy_std": 0.01})
    data["latency"] = {"protocol": "test", "hardware": "test",
                       "files": {runtime: {"2": {"median_ms": milliseconds, "p90_ms": milliseconds}}}}
    return ModelCard.from_data(data)


def test_the_rule_takes_the_fastest_commercial_model_within_a_tenth_of_a_point_of_both_best_scores():
    cards = {card.name: card for card in [
        _rule_card("accurate", 0.9940, 0.9600, 10.0),
        _rule_card("close-and-fast", 0.9931, 0.9591, 3.0),   # within 0.1 point of both bests
        _rule_card("fastest", 0.9925, 0.9600, 1.0),          # 0.15 points under the best LFW
        _rule_card("research-only", 0.9990, 0.9900, 0.5, commercial=False),  # not a candidate
    ]}
    assert default_by_rule(cards) == "close-and-fast"
    # a better hold-out score raises the bar the others must reach
    assert default_by_rule({**cards, "fastest": _rule_card("fastest", 0.9935, 0.9650, 1.0)}) == "fastest"
    # no model within a tenth of both bests: the best sum of the two accuracies, whatever its speed
    assert default_by_rule({"accurate": _rule_card("accurate", 0.9940, 0.9550, 10.0),
                            "fastest": _rule_card("fastest", 0.9925, 0.9650, 1.0)}) == "fastest"
    with pytest.raises(CardError, match="card_rule_metrics.py"):
        default_by_rule({**cards, "unmeasured": _rule_card("unmeasured", 0.99, None, 1.0)})


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_matches_the_files_it_names(name):
    card = CARDS[name]
    folder = ROOT / "saved_models" / name
    for fmt, artifact in [*card.artifacts.items(), ("config", card.config)]:
        path = folder / artifact.file
        assert path.is_file(), f"{name}: {fmt} artifact {path} is missing"
        assert path.stat().st_size == artifact.size, f"{name}: {path} size differs from the card"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256, f"{name}: {path} sha256"


@pytest.mark.parametrize("name", sorted(CARDS))
def test_the_hashed_config_says_what_the_card_says(name):
    """The Keras route rebuilds a zoo model from its config.json, as it does a run's folder: the card's
    architecture fields must be the same facts, not a second description."""
    card = CARDS[name]
    config = json.loads((SAVED / name / card.config.file).read_text())
    assert (config["backbone"], config.get("backbone_params") or {}, config["embedding_size"]) == (
        card.backbone, card.backbone_params, card.embedding_size)
    assert [config.get("image_size", 112)] * 2 == list(card.input_spec["size"])
    if "input_spec" in config:
        assert config["input_spec"] == card.input_spec


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_from_folder_rebuilds_every_shipped_card(name):
    """What a folder records (config, label map, history, files) is what its card says; only what was
    measured or stated by a person (summary, metrics, seconds, hardware, recipe, origin) is passed in."""
    card = CARDS[name]
    built = card_from_folder(SAVED / name, name=name, summary=card.summary, default=card.default,
                             artifacts={fmt: SAVED / name / a.file for fmt, a in card.artifacts.items()},
                             metrics=card.metrics, seconds=card.training["seconds"],
                             hardware=card.training["hardware"], recipe=card.training["recipe"],
                             origin=card.origin, weights_licence=card.licence.get("weights"),
                             commercial_use=card.commercial_use, latency=card.latency, version=card.version,
                             recipe_example=card.recipe_example, operating_point=card.operating_point)
    assert built.to_dict() == card.to_dict()


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_describes_architecture_data_metrics_and_licences(name):
    card = CARDS[name]
    InputSpec(**card.input_spec)  # a valid runtime spec
    assert card.embedding_size > 0 and card.backbone and card.head
    assert {"protocol", "data", "identities", "epochs", "seconds", "hardware", "recipe"} <= set(card.training)
    assert card.metrics and all({"benchmark", "protocol", "artifact", "accuracy_mean", "accuracy_std"}
                                <= set(metric) for metric in card.metrics)
    assert {metric["artifact"] for metric in card.metrics} <= set(card.artifacts)
    assert card.licence["weights"] and card.licence["training_data"]
    config = json.loads((SAVED / name / card.training["config"]).read_text())
    assert card.training["augmentation"] == config.get("augment", "none")
    if config.get("teacher"):  # a distilled model names its teacher, the weight and its licence
        assert card.training["distillation"]["teacher"] == pathlib.Path(config["teacher"]).name
        assert card.training["distillation"]["weight"] == config["distill_weight"]
        assert "Apache-2.0" in card.licence["teacher"] or "own terms" in card.licence["teacher"]
    else:
        assert card.training["distillation"] is None and "teacher" not in card.licence
    assert "keras" in card.artifacts and set(card.artifacts) <= set(ARTIFACT_FORMATS)
    # the parity figure recorded for each exported file is above its export gate
    assert all(metric["parity_min_cosine"] is None or metric["parity_min_cosine"] >= 0.99
               for metric in card.metrics)


@pytest.mark.parametrize("name", sorted(n for n, c in CARDS.items() if c.origin))
def test_converted_cards_record_origin_licence_and_parity_to_the_original(name):
    """A ported model: the original file's sha256 (as the conversion recorded it), the converter
    command, licences as stated, not trained here, and every shipped file's parity against the
    original above its export gate (float32 files and the Keras weights: 0.9999)."""
    card = CARDS[name]
    config = json.loads((SAVED / name / card.training["config"]).read_text())
    assert card.origin["sha256"] == config["converted_from"]["sha256"]
    assert card.origin["file"] == config["converted_from"]["file"] and card.origin["package"]
    assert card.origin["converter"].startswith("keras-arcface convert ")
    assert "not trained here" in card.training["protocol"] and "unknown" in card.licence["training_data"]
    assert isinstance(card.licence["commercial_use"], bool)
    gates = {"keras": 0.9999, "tflite_float32": 0.9999, "onnx": 0.9999, "tflite_float16": 0.999,
             "tflite_dynamic_int8": 0.99, "tflite_int8": 0.99}
    parity = card.origin["parity_to_original"]["min_cosine"]
    assert set(parity) == set(card.artifacts)
    assert all(parity[fmt] >= gates[fmt] for fmt in parity), parity
    assert InputSpec(**card.input_spec) == InputSpec(**config["input_spec"])


def write_card(tmp_path, **changes):
    data = CARDS[sorted(CARDS)[0]].to_dict()
    data.update(changes)
    path = tmp_path / f"{data['name']}.json"
    path.write_text(json.dumps(data))
    return path


def test_a_card_round_trips_through_json(tmp_path):
    card = ModelCard.from_file(write_card(tmp_path))
    assert card.to_dict() == CARDS[card.name].to_dict()


@pytest.mark.parametrize("change, message", [
    ({"artifacts": {"pickle": {"file": "a.pkl", "size": 1, "sha256": "0" * 64}}}, "unknown artifact format"),
    ({"artifacts": {"onnx": {"file": "../evil.onnx", "size": 1, "sha256": "0" * 64}}}, "plain file name"),
    ({"artifacts": {"onnx": {"file": "a.onnx", "size": 1, "sha256": "XYZ"}}}, "64 lower-case hex"),
    ({"artifacts": {}}, "no artifacts"),
    ({"colour": "RGB"}, "unknown fields"),
])
def test_invalid_cards_are_refused(tmp_path, change, message):
    with pytest.raises(CardError, match=message):
        ModelCard.from_file(write_card(tmp_path, **change))


def test_a_card_must_be_named_after_its_file_and_complete(tmp_path):
    path = write_card(tmp_path)
    path.rename(tmp_path / "other.json")
    with pytest.raises(CardError, match="the file must be"):
        ModelCard.from_file(tmp_path / "other.json")
    data = json.loads((tmp_path / "other.json").read_text())
    del data["licence"]
    (tmp_path / f"{data['name']}.json").write_text(json.dumps(data))
    with pytest.raises(CardError, match="lacks"):
        ModelCard.from_file(tmp_path / f"{data['name']}.json")


@pytest.mark.parametrize("name", sorted(CARDS))
def test_readme_lists_every_card_with_its_lfw_figure(name):
    readme = (ROOT / "README.md").read_text()
    keras_metric = [m for m in CARDS[name].metrics if m["artifact"] == "keras" and m["benchmark"] == "LFW"][0]
    row = [line for line in readme.splitlines() if line.startswith("| `") and f"`{name}`" in line.split(" | ")[0]]
    assert row, f"README's zoo table lacks {name}"
    assert f"{keras_metric['accuracy_mean'] * 100:.2f} ± {keras_metric['accuracy_std'] * 100:.2f}" in row[0]


@pytest.mark.parametrize("name", sorted(CARDS))
def test_every_artifact_has_thresholds_at_three_false_accept_rates(name):
    card = CARDS[name]
    for fmt in card.artifacts:
        thresholds = card.thresholds(fmt)
        far = thresholds["far"]
        assert set(far) == {"1e-2", "1e-3", "1e-4"}, (name, fmt)
        assert far["1e-2"] < far["1e-3"] < far["1e-4"] < 1.0, (name, fmt, far)
        assert "different-identity pairs" in thresholds["far_source"]
        assert card.lfw_metric(fmt)["artifact"] == fmt  # measured for that very file


def test_the_runtime_file_is_the_smallest_full_speed_file_that_passes_its_gates():
    """sface: its dynamic-range int8 file (9.9 MB) passes but runs in LiteRT's hybrid kernels, so the
    float16 file (19.3 MB) is its runtime file; with no full-speed file left, the int8 one is."""
    data = json.loads((ROOT / "zoo" / "sface.json").read_text())
    assert ModelCard.from_data(data).runtime_format() == "tflite_float16"
    data["artifacts"] = {fmt: a for fmt, a in data["artifacts"].items() if fmt in ("keras", "tflite_dynamic_int8")}
    assert ModelCard.from_data(data).runtime_format() == "tflite_dynamic_int8"


def test_the_default_card_has_a_runtime_format_that_passes_its_gates():
    (default,) = [card for card in CARDS.values() if card.default]
    fmt = default.runtime_format()
    assert fmt is not None and default.passes_gates(fmt) and fmt != "keras"
