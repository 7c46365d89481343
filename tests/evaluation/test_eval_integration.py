"""Evaluation end to end with the shared data and peer models; the commands; the runtime."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_arcface.cli import main
from keras_arcface.embedding import load_embedder
from keras_arcface.evaluation import evaluate_pairs
from tests.conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = SHARED_DATA.parent / "models"
SFACE = MODELS / "face_recognition_sface_2021dec_fp32_ort.onnx"
DETECTOR = MODELS / "face_detection_yunet_2023mar_int8bq.onnx"
LFW = SHARED_DATA / "lfw"
needs_shared = pytest.mark.skipif(not (SFACE.is_file() and (LFW / "pairs.txt").is_file()),
                                  reason="needs ../shared/data/lfw and ../shared/models (SFace)")


@pytest.mark.slow
@needs_shared
def test_sface_reproduces_its_published_lfw_accuracy():
    """../shared/models/README.md: SFace 99.38 % ± 0.37 on the 6000 pairs, thresholds 0.325-0.326.
    Fast guard: tests/zoo/test_card_checks.py (the original file's cosines on 60 recorded pairs)."""
    report = evaluate_pairs(load_embedder(SFACE), LFW / "pairs.txt", LFW / "aligned")
    assert report["pairs"] == 6000
    assert report["accuracy_mean"] * 100 == pytest.approx(99.38, abs=0.1)
    assert report["accuracy_std"] * 100 == pytest.approx(0.37, abs=0.05)
    assert 0.32 < min(report["fold_thresholds"]) and max(report["fold_thresholds"]) < 0.33


@needs_shared
def test_eval_verify_and_embed_commands(tmp_path, capsys):
    pairs = LFW / "raw_sample" / "pairs_sample.txt"
    roc = tmp_path / "roc.png"
    assert main(["eval", "--model", str(SFACE), "--pairs", str(pairs), "--images", str(LFW / "aligned"),
                 "--flip", "--roc", str(roc), "--json", str(tmp_path / "r.json"), "--limit", "40"]) == 0
    out = capsys.readouterr().out
    assert "accuracy (10-fold)" in out and "flip test              yes" in out and roc.stat().st_size > 0
    report = json.loads((tmp_path / "r.json").read_text())
    # --limit 40 keeps 2 same and 2 different pairs of each tenth of the file; its first half holds only same-person
    # pairs and its second half only different ones, so 2 of each tenth: 20 of its 100
    assert report["pairs"] == 20 and report["tar_at_far"]["0.001"] is None
    model = tmp_path / "face_recognition_sface_calibrated.onnx"
    model.write_bytes(SFACE.read_bytes())
    assert main(["eval", "--model", str(model), "--pairs", str(pairs), "--images", str(LFW / "aligned"),
                 "--save-threshold", "--limit", "40"]) == 0
    assert "calibrated threshold" in capsys.readouterr().out
    recorded = json.loads(pathlib.Path(str(model) + ".json").read_text())["threshold"]
    assert load_embedder(model).threshold == pytest.approx(recorded)
    photos = sorted((LFW / "raw_sample").glob("*/*.jpg"))
    by_person = {}
    for photo in photos:
        by_person.setdefault(photo.parent, []).append(photo)
    same_person = next(group for group in by_person.values() if len(group) >= 2)
    assert main(["verify", str(same_person[0]), str(same_person[1]), "--model", str(SFACE),
                 "--detector", str(DETECTOR), "--threshold", "0.3256"]) == 0
    assert "same person" in capsys.readouterr().out
    assert main(["verify", str(same_person[0]), str(same_person[1]), "--model", str(model),
                 "--detector", str(DETECTOR)]) == 0  # the calibrated threshold from the sidecar
    assert "threshold" in capsys.readouterr().out
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos[:3]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out_file = tmp_path / "emb.npy"
    assert main(["embed", str(folder), "--model", str(SFACE), "-o", str(out_file), "--align",
                 "--detector", str(DETECTOR)]) == 0
    assert np.load(out_file).shape == (3, 128)
    assert len(out_file.with_suffix(".txt").read_text().split()) == 3
    assert "skipped 1 file(s)" in capsys.readouterr().err


@needs_shared
def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    bad_pairs = tmp_path / "pairs.txt"
    bad_pairs.write_text("Aaron_Peirsol\t1\t2\nAaron_Peirsol\t1\n")
    assert main(["eval", "--model", str(SFACE), "--pairs", str(bad_pairs), "--images", str(LFW / "aligned")]) == 2
    assert "pairs.txt, line 2: expected" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((300, 300, 3), 200, np.uint8))
    photo = next((LFW / "raw_sample").glob("*/*.jpg"))
    assert main(["verify", str(photo), str(blank), "--model", str(SFACE), "--detector", str(DETECTOR)]) == 2
    assert "blank.png: no face found (upright or turned by 90, 180 or 270 degrees); try a photo" in \
        capsys.readouterr().err
    unreadable = tmp_path / "u.jpg"
    unreadable.write_bytes(b"")
    assert main(["verify", str(photo), str(unreadable), "--model", str(SFACE), "--detector", str(DETECTOR)]) == 2
    assert "u.jpg: not a decodable image" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot load"):
        load_embedder(tmp_path / "u.onnx") if (tmp_path / "u.onnx").write_bytes(b"junk") else None


def test_runtime_imports_neither_tensorflow_nor_keras():
    code = ("import sys, keras_arcface.runtime; "
            "print([m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.skipif(not (LFW / "pairsDevTest.txt").is_file(), reason="needs ../shared/data/lfw (View 1 files)")
def test_lfw_dev_report_reproduces_the_zoo_card(tmp_path, capsys):
    """The eval command's lfw-dev report on the zoo model's TFLite file equals the card's figure
    (measured there on the Keras model; the two agree to a cosine of 0.9999).  Fast guard: the
    calibrated-threshold report in test_calibrated.py and tests/zoo/test_card_checks.py (the same file's
    cosines on 60 recorded LFW pairs)."""
    card = json.loads((ROOT / "zoo" / "mfn-arcface-lfw-disjoint.json").read_text())
    recorded = [m for m in card["metrics"] if m["benchmark"].startswith("LFW View 1")][0]
    tflite = ROOT / "saved_models" / "mfn-arcface-lfw-disjoint" / card["artifacts"]["tflite_float32"]["file"]
    assert main(["eval", "--model", str(tflite), "--calibration-pairs", str(LFW / "pairsDevTrain.txt"),
                 "--pairs", str(LFW / "pairsDevTest.txt"), "--images", str(LFW / "aligned"),
                 "--json", str(tmp_path / "dev.json")]) == 0
    report = json.loads((tmp_path / "dev.json").read_text())
    assert report["calibration_pairs"] == 2200 and report["test_pairs"] == 1000
    assert report["accuracy"] == pytest.approx(recorded["accuracy_mean"], abs=0.002)
    assert report["threshold"] == pytest.approx(recorded["best_threshold"], abs=0.002)
    assert "accuracy on 1000 test pairs" in capsys.readouterr().out
