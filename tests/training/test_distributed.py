"""MirroredStrategy on 2 logical CPUs, every precision, with and without XLA (subprocesses)."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="MirroredStrategy is TensorFlow's")

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOLERANCE = {"float32": 1e-5, "mixed_float16": 1e-3, "mixed_bfloat16": 5e-3}


def _check(mode):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, str(ROOT / "tests/training/distributed_check.py"), mode],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def matrix():
    return _check("matrix")


@pytest.mark.parametrize("policy", list(TOLERANCE))
@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_two_replicas_match_one_device(matrix, policy, jit):
    """8 steps of a BN-free model + ArcFace: per-step losses of 2 replicas vs 1 device."""
    single = matrix[f"{policy}/jit={jit}/mirrored=False"]
    mirrored = matrix[f"{policy}/jit={jit}/mirrored=True"]
    assert mirrored["class"] == "MarginTrainingModel"
    assert np.all(np.isfinite(mirrored["losses"])) and len(mirrored["losses"]) == 8
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=TOLERANCE[policy])
    assert mirrored["iterations"] == single["iterations"]  # the same steps were skipped (float16)


def test_a_batch_that_does_not_split_over_the_replicas_is_refused(matrix):
    assert matrix["odd-batch"] == "batch_size 7 must be divisible by the 2 replicas over 1 worker(s)"


def test_float16_overflow_on_one_replica():
    """Keras' LossScaleOptimizer checks replica 0 only: NaN weights. Ours skips the step everywhere."""
    keras_model = _check("overflow-keras")["overflow-keras"]
    assert np.isnan(keras_model["losses"][-1]), "the scenario must overflow on one replica only"
    for mode in ("overflow-ours", "overflow-ours-jit"):
        ours = _check(mode)[mode]
        assert np.all(np.isfinite(ours["losses"])) and ours["iterations"] >= 5
