"""Int8 export of a model trained here keeps its LFW accuracy: measured on all of LFW in the slow tier
(needs ../shared), guarded in the default tier by the int8 file's parity and its verdicts on the bundled
demo pairs (needs only saved_models/)."""

import pathlib

import keras
import numpy as np
import pytest

from keras_arcface.data import FaceFolder
from keras_arcface.embedding import load_embedder
from keras_arcface.evaluation import evaluate_pairs
from keras_arcface.export import export
from tests.conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "saved_models" / "mfn-arcface-lfw-disjoint"
LFW = SHARED_DATA / "lfw"

pytestmark = [
    pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export needs TensorFlow"),
    pytest.mark.skipif(not (MODEL / "config.json").is_file(), reason=f"needs the trained model in {MODEL}"),
]


def test_int8_export_keeps_parity_and_the_keras_verdicts_on_the_demo_pairs(tmp_path):
    """The fast guard: calibrated on the 8 bundled crops and their mirror images, the int8 file passes its
    parity gate against the Keras model and calls each of the 24 demo pairs as the Keras model does at the
    card's threshold (a broken calibration or quantisation fails both)."""
    from keras_arcface.demo import DEMO_DATA
    from keras_arcface.evaluation import embed_files, read_pairs
    from keras_arcface.evaluation.evaluate import pair_cosines
    from keras_arcface.zoo import model_card

    folder = FaceFolder.scan(DEMO_DATA / "faces", warn=False)
    faces = np.concatenate([folder.images, folder.images[:, :, ::-1]])
    result = export(MODEL, ["tflite_int8"], tmp_path, faces, name="mfn")["tflite_int8"]
    assert result["min_cosine"] >= 0.99
    pairs = read_pairs(DEMO_DATA / "pairs.txt", DEMO_DATA / "faces")
    paths = sorted({path for pair in pairs for path in (pair.left, pair.right)})
    threshold = model_card(MODEL.name).thresholds("keras")["threshold"]
    verdicts = {}
    for fmt, model in (("keras", MODEL), ("tflite_int8", result["path"])):
        scores, _ = pair_cosines(pairs, embed_files(load_embedder(model), paths)[0], paths)
        verdicts[fmt] = scores > threshold
    assert len(pairs) == 24 and (verdicts["tflite_int8"] == verdicts["keras"]).all(), verdicts


@pytest.mark.slow
@pytest.mark.skipif(not (LFW / "pairs.txt").is_file() or not (SHARED_DATA / "celeba").is_dir(),
                    reason="needs ../shared/data (LFW and CelebA)")
def test_int8_tflite_is_within_0_3_points_of_the_float_model_on_lfw(tmp_path):
    """Calibrated on 200 CelebA training faces; both evaluated on all 6000 LFW pairs."""
    celeba = FaceFolder.scan(SHARED_DATA / "celeba" / "aligned", warn=False)
    faces = celeba.images[np.random.default_rng(0).choice(len(celeba.images), 200, replace=False)]
    # every format, so each parity gate is checked on real faces (export raises below a gate)
    results = export(MODEL, ["saved_model", "tflite_float32", "tflite_float16", "tflite_dynamic_int8",
                             "tflite_int8", "onnx"], tmp_path, faces, name="mfn")
    accuracy = {}
    for fmt in ("tflite_float32", "tflite_int8"):
        report = evaluate_pairs(load_embedder(results[fmt]["path"]), LFW / "pairs.txt", LFW / "aligned")
        accuracy[fmt] = report["accuracy_mean"] * 100
    print(accuracy, {fmt: r["min_cosine"] for fmt, r in results.items()})
    assert accuracy["tflite_float32"] > 60  # a trained model, not chance
    assert abs(accuracy["tflite_int8"] - accuracy["tflite_float32"]) <= 0.3
