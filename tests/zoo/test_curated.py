"""A curated zoo: `zoo list` holds the models a user should pick (the quality bar of docs/zoo.md); the training-recipe
examples are listed with --all and load by name with a warning that names their LFW figure.  And the one
calibrated-embedder object every consumer reads."""

import dataclasses
import pathlib

import pytest

from keras_arcface.cli import main
from keras_arcface.errors import InputError
from keras_arcface.runtime import FaceEmbedder, InputSpec, ModelReference
from keras_arcface.zoo import RecipeExampleWarning, list_models, load_model, model_card, read_cards
from keras_arcface.zoo.cards import QUALITY_BAR_LFW

ROOT = pathlib.Path(__file__).resolve().parents[2]
CARDS = read_cards(ROOT / "zoo")


@pytest.fixture
def zoo_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ARCFACE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_ARCFACE_ZOO_URLS", str(ROOT / "saved_models"))


@pytest.mark.parametrize("name", sorted(CARDS))
def test_listed_models_meet_the_quality_bar_and_examples_do_not(name):
    card = CARDS[name]
    failures = card.quality_bar_failures()
    if card.recipe_example:
        assert failures, f"{name} meets the quality bar: list it (drop recipe_example)"
    else:
        assert failures == [], f"{name} is listed but below the bar: {failures}"


def test_zoo_list_shows_the_curated_models_and_all_shows_the_examples(capsys, zoo_env):
    examples = sorted(name for name, card in CARDS.items() if card.recipe_example)
    assert len(examples) == 3 and not set(examples) & set(list_models())
    assert set(examples) <= set(list_models(include_examples=True))
    assert main(["zoo", "list"]) == 0
    listed = capsys.readouterr().out
    assert not any(f"\n{name}" in f"\n{listed}" for name in examples)
    assert all(f"\n{name}" in f"\n{listed}" for name in list_models())
    assert main(["zoo", "list", "--all"]) == 0
    everything = capsys.readouterr().out
    for name in examples:
        assert f"{name}  (training-recipe example: below the quality bar)" in everything


def test_a_recipe_example_loads_by_name_with_a_warning_naming_its_lfw_figure(zoo_env):
    name = "mfn-arcface-lfw-disjoint"
    lfw = CARDS[name].lfw_metric("keras")["accuracy_mean"]
    assert lfw < QUALITY_BAR_LFW
    with pytest.warns(RecipeExampleWarning, match=f"{name} is a training-recipe example \\(LFW {lfw * 100:.2f} %\\)"):
        embedder = load_model(name, "tflite_float32")
    assert embedder.reference.name == name


def test_the_loader_hands_the_embedder_one_frozen_reference(zoo_env):
    name = "sface"
    card = model_card(name)
    embedder = load_model(name, "onnx")
    reference = embedder.reference
    assert isinstance(reference, ModelReference) and str(reference) == f"{name}:onnx"
    assert reference.threshold == card.thresholds("onnx")["threshold"] == embedder.threshold
    assert dict(reference.far_thresholds) == card.lfw_metric("onnx")["threshold_at_far"]
    assert reference.spec == InputSpec(**card.input_spec) == embedder.spec
    assert reference.licence["weights"] == card.licence["weights"] and reference.source == "cached"
    assert reference.path == str(embedder.path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.threshold = 0.5
    with pytest.raises(TypeError):
        reference.far_thresholds["1e-3"] = 0.0
    assert reference.threshold_at_far(1e-3)[0] == card.lfw_metric("onnx")["threshold_at_far"]["1e-3"]
    with pytest.raises(InputError, match="no threshold for FAR 1e-05.*its card measured 1e-2, 1e-3, 1e-4"):
        reference.threshold_at_far(1e-5)
    overridden = load_model(name, "onnx", spec=InputSpec(mean=0.0, std=1.0))
    assert overridden.spec.mean == 0.0 and overridden.reference.threshold == reference.threshold


def test_a_file_by_path_gets_its_reference_from_its_sidecar(zoo_env, tmp_path):
    from keras_arcface.zoo import download

    path = pathlib.Path(download("sface", "onnx"))
    by_path = FaceEmbedder(path)
    assert by_path.reference.name == "sface" and by_path.reference.format is None  # reloads by its path
    assert str(by_path.reference) == str(path) and by_path.reference.source == "file"
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(path.read_bytes())
    assert FaceEmbedder(bare).reference.threshold is None and FaceEmbedder(bare).reference.name == "bare.onnx"
