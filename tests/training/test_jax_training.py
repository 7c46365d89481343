"""The JAX backend: DataParallel over 2 host devices, and the GPU speed script on tiny sizes."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed"),
    pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="runs its own JAX processes"),
]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
                TF_CPP_MIN_LOG_LEVEL="2")


def test_data_parallel_training_on_two_host_devices():
    done = subprocess.run([sys.executable, str(ROOT / "tests/training/jax_data_parallel_check.py")],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["devices"] == 2 and result["distribution"] == "DataParallel"
    assert np.all(np.isfinite(result["losses"])) and len(result["losses"]) == 2


#: The slow tier runs the script end to end (the mode a GPU is timed in, JAX, and every mode).  Fast guards: the
#: script's training model and step loop in graph mode (test_speed_scripts.py's profiler run builds the same
#: model), and JAX training in mixed_bfloat16 (test_data_parallel_training_on_two_host_devices, above).
SPEED_MODES = [pytest.param(["jax"], id="jax", marks=pytest.mark.slow),
               pytest.param(["graph", "xla", "jax"], id="every-mode", marks=pytest.mark.slow)]


@pytest.mark.parametrize("modes", SPEED_MODES)
def test_speed_script_runs_tiny_on_cpu(tmp_path, modes):
    out = tmp_path / "speed.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "scripts/train_speed.py"), "--tiny", "--backbones",
                           "mobilefacenet", "--precision", "mixed_bfloat16", "--modes", *modes, "--json", str(out)],
                          capture_output=True, text=True, env=_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    backends = {"graph": "tensorflow", "xla": "tensorflow", "jax": "jax"}
    assert [(r["mode"], r["backend"]) for r in rows] == [(mode, backends[mode]) for mode in modes]
    for row in rows:
        assert row["backbone"] == "mobilefacenet" and row["precision"] == "mixed_bfloat16"
        assert row["samples_per_s"] > 0 and np.isfinite(row["final_loss"]) and row["peak_host_mib"] > 100
    assert "samples/s" in done.stdout
