"""Loading zoo models by name through the cache (saved_models/ as the mirror), the CLI and the demo."""

import json
import pathlib

import keras
import numpy as np
import pytest

from keras_arcface.cli import main
from keras_arcface.formats import FORMATS
from keras_arcface.runtime import FaceEmbedder, KerasEmbedder
from keras_arcface.zoo import CardError, default_model, download, list_models, load_backbone, load_model, model_card

ROOT = pathlib.Path(__file__).resolve().parents[2]
MIRROR = str(ROOT / "saved_models")

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TFLite parity needs TensorFlow's "
                                "test run (the runtime itself needs no TensorFlow)")


@pytest.fixture
def zoo_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ARCFACE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_ARCFACE_ZOO_URLS", MIRROR)
    return tmp_path / "cache"


def test_list_and_cards():
    assert default_model() in list_models()
    with pytest.raises(CardError, match="unknown zoo model"):
        model_card("no-such-model")


def test_keras_and_tflite_models_load_by_name_and_agree(zoo_env, rng):
    name = default_model()
    backbone = load_backbone(name)
    assert isinstance(backbone, keras.Model) and backbone.output_shape[-1] == model_card(name).embedding_size
    keras_embedder = load_model(name, "keras")
    assert isinstance(keras_embedder, KerasEmbedder) and isinstance(keras_embedder.model, keras.Model)
    embedder = load_model(name, "tflite_float32")
    assert isinstance(embedder, FaceEmbedder)
    faces = rng.integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    # one contract: uint8 faces in, unit vectors out, for either format
    keras_embeddings = keras_embedder.embed(faces)
    np.testing.assert_allclose(np.linalg.norm(keras_embeddings, axis=1), 1.0, atol=1e-5)
    assert np.sum(keras_embeddings * embedder.embed(faces), axis=1).min() > 0.9999
    # the raw backbone wants the card's preprocessing and returns unnormalised vectors
    raw = np.asarray(backbone.predict_on_batch(keras_embedder.spec.prepare(faces)))
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), keras_embeddings, atol=1e-5)
    # the card's thresholds travel with each artifact
    card = model_card(name)
    assert keras_embedder.threshold == card.thresholds("keras")["threshold"]
    assert embedder.threshold == card.thresholds("tflite_float32")["threshold"]
    assert "LFW" in embedder.reference.threshold_source
    assert (zoo_env / name / model_card(name).artifact("keras").file).is_file()  # it went through the cache


def test_the_default_embedder_is_the_smallest_full_speed_artifact_that_passes_its_gates(zoo_env):
    card = model_card(default_model())
    embedder = load_model()
    fmt = card.runtime_format()
    assert embedder.reference.format == fmt and isinstance(embedder, FaceEmbedder)
    passing = [f for f in card.artifacts if f != "keras" and card.passes_gates(f) and FORMATS[f].full_speed]
    assert fmt in passing and card.artifacts[fmt].size == min(card.artifacts[f].size for f in passing)
    metric = card.lfw_metric(fmt)
    assert metric["accuracy_mean"] >= card.lfw_metric("keras")["accuracy_mean"] - 0.005


def test_cli_zoo_list_info_download(zoo_env, capsys):
    name = default_model()
    assert main(["zoo", "list"]) == 0
    assert f"{name}  (default)" in capsys.readouterr().out
    assert main(["zoo", "list", "--commercial"]) == 0
    listed = capsys.readouterr().out
    commercial = [n for n in list_models() if model_card(n).commercial_use]
    assert commercial and all(f"\n{n}" in f"\n{listed}" for n in commercial)
    assert not any(f"\n{n}" in f"\n{listed}" for n in list_models() if n not in commercial)
    assert "weights licence: Apache-2.0" in listed and "commercial use: allowed" in listed
    assert main(["zoo", "info", name]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == name
    assert main(["zoo", "download", name, "--format", "onnx", "--cache-dir", str(zoo_env / "other")]) == 0
    path = pathlib.Path(capsys.readouterr().out.strip())
    assert path == zoo_env / "other" / name / model_card(name).artifact("onnx").file and path.is_file()
    assert download(name, "onnx", cache_dir=zoo_env / "other", offline=True) == path
    assert main(["zoo", "download", "no-such-model"]) == 2
    assert "unknown zoo model" in capsys.readouterr().err


def test_demo_verifies_the_bundled_pairs_with_tflite_parity(zoo_env, capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Grace_Hopper_0001" in out and "accuracy" in out and "decisions identical" in out
    from keras_arcface.demo import run_demo

    result = run_demo(print_fn=lambda *a: None)
    assert len(result["rows"]) == 24 and result["min_cosine"] > 0.9999 and result["decisions_agree"]
    rows = result["rows"]
    assert result["accuracy"] == np.mean([(r["cosine"] >= result["threshold"]) == r["same"] for r in rows])
    # a trained model, not chance: the default model (SFace, LFW 99.38 %) gets all 24 pairs right
    # (same-person pairs 0.76-0.92, different people 0.08-0.18); the best model trained here
    # (LFW 85.7 %) scored 91.7 %, the first one 75 %
    same = np.mean([r["cosine"] for r in rows if r["same"]])
    different = np.mean([r["cosine"] for r in rows if not r["same"]])
    assert same - different > 0.5 and result["accuracy"] >= 0.95


def test_demo_offline_without_a_cache_fails_clearly(zoo_env, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_ARCFACE_OFFLINE", "1")
    assert main(["demo"]) == 2
    assert "offline mode" in capsys.readouterr().err


def test_a_downloaded_runtime_file_carries_its_cards_thresholds(zoo_env):
    from keras_arcface.embedding import load_embedder

    name = default_model()
    card = model_card(name)
    path = download(name, "onnx")
    sidecar = json.loads(pathlib.Path(f"{path}.json").read_text())
    assert sidecar["threshold"] == card.thresholds("onnx")["threshold"]
    assert sidecar["far_thresholds"] == card.lfw_metric("onnx")["threshold_at_far"]
    by_path = load_embedder(path)  # the file alone verifies like the zoo name
    assert by_path.threshold == sidecar["threshold"]
    assert dict(by_path.reference.far_thresholds) == sidecar["far_thresholds"]
    assert by_path.spec.mean == card.input_spec["mean"] and "LFW" in by_path.reference.threshold_source
