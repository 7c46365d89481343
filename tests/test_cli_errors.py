"""Every expected failure of the command line: one line ``error: ...`` on stderr and exit code 2.

The table runs each bad input through ``keras_arcface.cli.main`` (the console script's entry
point); one case also runs the installed ``keras-arcface`` script in a subprocess.  Each row
names the text the line must contain: the value or file at fault and, where there is one, the fix.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_arcface.cli import main
from tests.faces import make_face_folder, write_image

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the fixtures save Keras files with the TensorFlow backend")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Tiny inputs, good and bad, shared by every case."""
    from keras_arcface.backbones import MobileFaceNet

    root = tmp_path_factory.mktemp("cli_errors")
    faces = make_face_folder(root / "faces", identities=2, per_identity=4, size=32)
    model = MobileFaceNet(embedding_size=16, input_shape=(32, 32, 3))
    model.save(root / "tiny.keras")
    for name in ("corrupt.tflite", "corrupt.onnx", "corrupt.keras", "corrupt.weights.h5"):
        (root / name).write_bytes(b"this is not a model file\n" * 4)
    (root / "not_an_image.jpg").write_text("plain text, not a JPEG")
    photos = root / "photos" / "someone"
    photos.mkdir(parents=True)
    write_image(photos / "holiday.jpg", np.full((150, 200, 3), 120, np.uint8))
    (root / "empty").mkdir()
    (root / "broken" / "someone").mkdir(parents=True)
    (root / "broken" / "someone" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (root / "short_pairs.txt").write_text("10\t300\nid_0\t0\t1\nid_1\t0\t1\nid_0\t2\tid_1\t2\nid_0\t3\tid_1\t3\n")
    (root / "four_pairs.txt").write_text("id_0\t0\t1\nid_1\t0\t1\nid_0\t2\tid_1\t2\nid_0\t3\tid_1\t3\n")
    (root / "garbled_pairs.txt").write_text("1\t1\nid_0\tzero\tone\nid_0\t0\tid_1\t0\n")
    (root / "other_run").mkdir()
    (root / "other_run" / "config.json").write_text(json.dumps({"data_dirs": [str(faces)], "output_dir": "x",
                                                                  "backbone": "mobilefacenet", "image_size": 32}))
    (root / "converted").mkdir()
    (root / "converted" / "config.json").write_text(json.dumps({"backbone": "sface", "embedding_size": 128,
                                                                  "converted_from": {"file": "sface.onnx"}}))
    return {"root": root, "faces": faces, "model": root / "tiny.keras"}


def _train(files, *extra, output=None):
    return ["train", "--data", str(files["faces"]), "--output", str(output or files["root"] / "run"),
            "--backbone-params", '{"width": 0.25}', "--backbone", "sface", "--image-size", "32",
            "--embedding-size", "16", "--epochs", "1", "--batch-size", "4", *extra]


def _eval(files, *extra, model=None, pairs=None):
    return ["eval", "--model", str(model or files["model"]), "--pairs", str(pairs or files["root"] / "short_pairs.txt"),
            "--images", str(files["faces"]), *extra]


def _file(files, name):
    return str(files["root"] / name)


#: (case, argv from the fixture's files, texts the error line must contain)
CASES = [
    ("train: negative ArcFace margin", lambda f: _train(f, "--head-params", '{"margin": -0.5}'),
     ["margin", "-0.5", "[0, pi/2)"]),
    ("train: negative scale", lambda f: _train(f, "--head-params", '{"scale": -10}'), ["scale", "-10", "(0, inf)"]),
    ("train: misspelled head parameter", lambda f: _train(f, "--head-params", '{"margn": 0.3}'),
     ["'margn'", "margin"]),
    ("train: head parameters not JSON", lambda f: _train(f, "--head-params", "{margin: 0.3}"),
     ["--head-params", "JSON"]),
    ("train: head parameters not an object", lambda f: _train(f, "--head-params", "[0.3]"),
     ["--head-params", "object"]),
    ("train: unknown head", lambda f: _train(f, "--head", "arcfce"), ["'arcfce'", "arcface"]),
    ("train: unknown backbone", lambda f: _train(f, "--backbone", "resnet9"), ["'resnet9'", "mobilefacenet"]),
    ("train: bad backbone parameter", lambda f: _train(f, "--backbone-params", '{"width": -1}'),
     ["width", "-1"]),
    ("train: unknown backbone parameter", lambda f: _train(f, "--backbone-params", '{"widht": 1}'),
     ["'widht'", "width"]),
    ("train: missing data folder", lambda f: [a if a != str(f["faces"]) else _file(f, "nowhere") for a in _train(f)],
     ["nowhere", "<identity>/<image>"]),
    ("train: data folder without identities", lambda f: [a if a != str(f["faces"]) else _file(f, "empty")
                                                         for a in _train(f)], ["empty"]),
    ("train: negative learning rate", lambda f: _train(f, "--lr", "-0.1"), ["learning_rate", "-0.1"]),
    ("train: head-only epochs beyond the run", lambda f: _train(f, "--head-only-epochs", "3"),
     ["head_only_epochs", "3"]),
    ("train: unknown augmentation", lambda f: _train(f, "--augment", "heavy"), ["'heavy'", "light"]),
    ("train: output holds another configuration", lambda f: _train(f, output=f["root"] / "other_run"),
     ["other_run", "backbone: 'mobilefacenet' there, 'sface' now", "another --output"]),
    ("train: output holds a converted model", lambda f: _train(f, output=f["root"] / "converted"),
     ["converted", "not a training run"]),
    ("train: init-from a missing zoo model", lambda f: _train(f, "--init-from", "no-such-model"),
     ["'no-such-model'"]),
    ("lr-find: bad head parameter", lambda f: ["lr-find", *_train(f, "--head-params", '{"scale": 0}')[1:]],
     ["scale", "0"]),
    ("eval: fewer pairs than the header declares", lambda f: _eval(f), ["short_pairs.txt", "10", "4"]),
    ("eval: garbled pairs line", lambda f: _eval(f, pairs=f["root"] / "garbled_pairs.txt"),
     ["garbled_pairs.txt", "line 2"]),
    ("eval: missing pairs file", lambda f: _eval(f, pairs=f["root"] / "no_pairs.txt"), ["no_pairs.txt"]),
    ("eval: corrupt .tflite", lambda f: _eval(f, model=f["root"] / "corrupt.tflite"), ["corrupt.tflite", "TFLite"]),
    ("eval: corrupt .onnx", lambda f: _eval(f, model=f["root"] / "corrupt.onnx"), ["corrupt.onnx", "ONNX"]),
    ("eval: corrupt .keras", lambda f: _eval(f, model=f["root"] / "corrupt.keras"), ["corrupt.keras", ".keras"]),
    ("eval: missing model", lambda f: _eval(f, model=f["root"] / "gone.onnx"), ["gone.onnx"]),
    ("eval: unsupported model file", lambda f: _eval(f, model=f["root"] / "not_an_image.jpg"),
     ["not_an_image.jpg", ".onnx"]),
    ("eval: input spec not JSON", lambda f: _eval(f, "--input-spec", "{mean: 1}"), ["--input-spec", "JSON"]),
    ("eval: pairs that do not split into the folds",
     lambda f: _eval(f, "--folds", "3", pairs=f["root"] / "four_pairs.txt"),
     ["four_pairs.txt", "3 equal folds"]),
    ("eval: limit below one pair per fold", lambda f: _eval(f, "--folds", "2", "--limit", "0",
                                                         pairs=f["root"] / "four_pairs.txt"), ["--limit 0"]),
    ("verify: not an image", lambda f: ["verify", _file(f, "not_an_image.jpg"), _file(f, "not_an_image.jpg"),
                                        "--model", str(f["model"])], ["not_an_image.jpg"]),
    ("verify: missing photo", lambda f: ["verify", _file(f, "gone.jpg"), _file(f, "gone.jpg"), "--model",
                                         str(f["model"])], ["gone.jpg"]),
    ("embed: photos without a face", lambda f: ["embed", _file(f, "photos"), "--model", str(f["model"]), "-o",
                                                _file(f, "out.npy")], ["holiday.jpg", "no face", "one clear, frontal"]),
    ("embed: only unreadable images", lambda f: ["embed", _file(f, "broken"), "--model", str(f["model"]), "-o",
                                                 _file(f, "out.npy")],
     ["broken.jpg", "not a decodable image", "readable photos", "aligned 32x32 crops"]),
    ("embed: missing folder", lambda f: ["embed", _file(f, "nowhere"), "--model", str(f["model"]), "-o",
                                         _file(f, "out.npy")], ["nowhere"]),
    ("embed: folder without images", lambda f: ["embed", _file(f, "empty"), "--model", str(f["model"]), "-o",
                                                _file(f, "out.npy")], ["empty", "no image"]),
    ("export: unknown format", lambda f: ["export", "--model", str(f["model"]), "--formats", "tflite", "--faces",
                                          str(f["faces"]), "-o", _file(f, "exported")], ["'tflite'", "tflite_float32"]),
    ("export: corrupt model", lambda f: ["export", "--model", _file(f, "corrupt.keras"), "--faces", str(f["faces"]),
                                         "-o", _file(f, "exported")], ["corrupt.keras"]),
    ("export: missing model", lambda f: ["export", "--model", _file(f, "gone_run"), "--faces", str(f["faces"]),
                                         "-o", _file(f, "exported")], ["gone_run", "not found", "training output"]),
    ("export: missing faces", lambda f: ["export", "--model", str(f["model"]), "--faces", _file(f, "nowhere"),
                                         "-o", _file(f, "exported")], ["nowhere"]),
    ("convert: corrupt source", lambda f: ["convert", _file(f, "corrupt.onnx"), "--backbone", "sface", "--faces",
                                           str(f["faces"]), "-o", _file(f, "converted")], ["corrupt.onnx"]),
    ("convert: unknown backbone", lambda f: ["convert", _file(f, "corrupt.onnx"), "--backbone", "vgg", "--faces",
                                             str(f["faces"]), "-o", _file(f, "converted")], ["'vgg'"]),
    ("serve: a Milvus Lite file with two workers", lambda f: ["serve", "--gallery", _file(f, "g.db"), "--workers",
                                                              "2"], ["g.db", "--workers 1", "milvus://"]),
    ("serve: an unknown model", lambda f: ["serve", "--model", "no-such-model"], ["'no-such-model'", "zoo name"]),
    ("serve: a negative timeout", lambda f: ["serve", "--timeout", "-1"], ["--timeout must", "-1"]),
    ("serve: a missing key file", lambda f: ["serve", "--api-key-file", _file(f, "keys.txt")], ["keys.txt"]),
    ("zoo: unknown model", lambda f: ["zoo", "info", "no-such-model"], ["'no-such-model'"]),
    ("zoo: unknown format", lambda f: ["zoo", "download", "sface", "--format", "pt", "--cache-dir",
                                       _file(f, "cache")], ["'pt'", "keras"]),
]


@pytest.mark.parametrize("argv, expected", [pytest.param(argv, expected, id=case) for case, argv, expected in CASES])
def test_bad_input_gives_one_line_and_exit_code_2(files, argv, expected, capsys):
    try:
        code = main(argv(files))
    except SystemExit as exit:  # a usage error caught by the parser (a bad choice)
        code = exit.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for text in expected:
        assert text in lines[0], (text, lines[0])


def test_the_table_covers_at_least_25_bad_inputs_across_the_commands():
    assert len(CASES) >= 25
    assert {case.split(":")[0] for case, _, _ in CASES} >= {"train", "lr-find", "eval", "verify", "embed", "export",
                                                            "convert", "zoo"}


def test_the_installed_script_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "keras_arcface.cli", "zoo", "info", "no-such-model"],
                            capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(lines) == 1 and "'no-such-model'" in lines[0], result.stderr


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Unexpected exceptions are not turned into one-line errors (exit 1 through the traceback)."""
    import keras_arcface.zoo

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(keras_arcface.zoo, "list_models", broken)
    with pytest.raises(KeyError):
        main(["zoo", "list"])
