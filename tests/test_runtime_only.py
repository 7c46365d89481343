"""The command line without TensorFlow or Keras: with an ONNX / TFLite model (the default), `zoo`,
`demo`, `verify`, `embed`, `eval`, `index` and `identify` run in a process where importing either
fails, as in `pip install keras-arcface[runtime]` (.ci/check_wheel checks the real wheel)."""

import os
import pathlib
import subprocess
import sys

import pytest

from tests.faces import DEMO_FACES, demo_face, photo_of, write_image

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Makes tensorflow, keras and jax missing for the rest of the process.
BLOCKER = """
import importlib.abc, importlib.util, sys
BLOCKED = {"tensorflow", "keras", "jax", "tf_keras"}
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
sys.meta_path.insert(0, Missing())
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in BLOCKED else _find_spec(name, *a)
"""
#: Runs the CLI with tensorflow, keras and jax missing, then reports which of them got imported.
BLOCKED = BLOCKER + """
from keras_arcface.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:  # --version and usage errors exit from argparse
    code = done.code
print("IMPORTED:", sorted(m for m in BLOCKED if m in sys.modules))
sys.exit(code)
"""


def run_without_tensorflow(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_ARCFACE_CACHE": str(pathlib.Path(cwd) / "cache")}
    return subprocess.run([sys.executable, "-c", BLOCKED, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture
def photos(tmp_path):
    write_image(tmp_path / "a.jpg", photo_of([demo_face("Grace_Hopper", 1)]))
    write_image(tmp_path / "b.jpg", photo_of([demo_face("Grace_Hopper", 3)], scale=2.5))
    write_image(tmp_path / "people" / "Grace_Hopper" / "1.jpg", photo_of([demo_face("Grace_Hopper", 2)]))
    write_image(tmp_path / "people" / "Eileen_Collins" / "1.jpg", photo_of([demo_face("Eileen_Collins", 1)]))
    return tmp_path


@pytest.mark.parametrize("command", ["verify", "zoo", "demo", "embed", "eval", "index+identify"])
def test_commands_run_without_tensorflow_or_keras(photos, command):
    steps = {
        "verify": [["verify", "a.jpg", "b.jpg"]],
        "zoo": [["zoo", "list"], ["zoo", "download", "sface", "--format", "onnx"], ["--version"]],
        "demo": [["demo"]],
        "embed": [["embed", str(DEMO_FACES), "-o", "embeddings.npy"], ["embed", ".", "--align", "-o", "aligned.npy"]],
        "eval": [["eval", "--pairs", str(DEMO_FACES.parent / "pairs.txt"), "--images", str(DEMO_FACES),
                  "--folds", "2"]],
        "index+identify": [["index", "people", "-o", "gallery.npz"],
                           ["identify", "a.jpg", "--gallery", "gallery.npz"]],
    }[command]
    for args in steps:
        result = run_without_tensorflow(*args, cwd=photos)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        assert "IMPORTED: []" in result.stdout, (args, result.stdout[-500:])
        assert "Traceback" not in result.stderr and "E0000" not in result.stderr, result.stderr[-2000:]
    if command == "demo":
        assert "parity check is skipped" in result.stdout and "accuracy 100.00% on 24 pairs" in result.stdout
    if command == "verify":
        assert "verdict    same person" in result.stdout and result.stderr.strip() == ""


def test_a_keras_model_without_keras_says_what_to_install(photos):
    result = run_without_tensorflow("verify", "a.jpg", "b.jpg", "--model", "sface:keras", cwd=photos)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'keras-arcface[tensorflow]'" in result.stderr and "sface:keras" in result.stderr


#: Each Keras-only entry point, called without Keras: it must raise KerasMissingError (an ImportError and an
#: InputError) naming the extra, never a ModuleNotFoundError from deep inside.
KERAS_ONLY = {
    "load_backbone": "from keras_arcface.zoo import load_backbone; load_backbone('sface')",
    "load_keras_model": "from keras_arcface.embedding import load_keras_model; load_keras_model('sface')",
    "load_model keras": "from keras_arcface.zoo import load_model; load_model('sface', 'keras')",
    "heads": "import keras_arcface.heads",
    "backbones": "from keras_arcface.backbones import get_backbone",
    "export": "from keras_arcface.export import export",
    "convert": "from keras_arcface.convert import convert",
    "losses": "import keras_arcface.losses",
}


@pytest.mark.parametrize("entry", sorted(KERAS_ONLY))
def test_keras_only_entry_points_without_keras_name_the_extra(entry, tmp_path):
    script = BLOCKER + f"""
from keras_arcface.runtime import KerasMissingError
try:
    {KERAS_ONLY[entry]}
except KerasMissingError as error:
    print("CLEAR:", error)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_ARCFACE_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CLEAR:" in result.stdout and "pip install 'keras-arcface[tensorflow]'" in result.stdout, result.stdout


def test_keras_commands_without_keras_say_what_to_install(photos):
    result = run_without_tensorflow("train", "--data", "people", "--output", "run", cwd=photos)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "keras-arcface train needs Keras" in result.stderr and "keras-arcface[tensorflow]" in result.stderr


def test_the_python_api_starts_tensorflow_without_its_start_up_lines(tmp_path):
    """As the command line does: `from keras_arcface import ArcFaceLayer` (and any Keras entry point) imports
    TensorFlow with its C++ start-up lines (oneDNN, CUDA stubs, cuInit) kept off stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    script = ("from keras_arcface import ArcFaceLayer\nimport keras\nimport numpy as np\n"
              "layer = ArcFaceLayer(num_classes=3)\nprint(keras.ops.convert_to_numpy(layer([np.ones((2, 4), "
              "'float32'), np.array([0, 1])])).shape)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=300)
    assert result.returncode == 0 and "(2, 3)" in result.stdout, result.stderr[-2000:]
    for noise in ("oneDNN", "cuda", "cuInit", "I0000", "E0000", "absl::InitializeLog"):
        assert noise not in result.stderr, result.stderr[-2000:]
