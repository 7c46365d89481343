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


def _check(mode, *combinations):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, str(ROOT / "tests/training/distributed_check.py"), mode, *combinations],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


#: Every precision x graph / XLA.  The default tier runs float32 in both modes, float16 (loss scaling) under XLA
#: and bfloat16 in graph mode, in one process; the slow tier the other two in another.
COMBINATIONS = [f"{policy}/{mode}" for policy in TOLERANCE for mode in ("graph", "xla")]
DEFAULT_TIER = ["float32/graph", "float32/xla", "mixed_float16/xla", "mixed_bfloat16/graph"]


@pytest.fixture(scope="module")
def matrix():
    return _check("matrix", *DEFAULT_TIER)


@pytest.fixture(scope="module")
def matrix_rest():
    return _check("matrix", *(c for c in COMBINATIONS if c not in DEFAULT_TIER))


@pytest.mark.parametrize("combination", [pytest.param(c, marks=() if c in DEFAULT_TIER else pytest.mark.slow)
                                         for c in COMBINATIONS])
def test_two_replicas_match_one_device(combination, request):
    """8 steps of a BN-free model + ArcFace: per-step losses of 2 replicas vs 1 device."""
    results = request.getfixturevalue("matrix" if combination in DEFAULT_TIER else "matrix_rest")
    single, mirrored = results[f"{combination}/mirrored=False"], results[f"{combination}/mirrored=True"]
    assert mirrored["class"] == "MarginTrainingModel"
    assert np.all(np.isfinite(mirrored["losses"])) and len(mirrored["losses"]) == 8
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=TOLERANCE[combination.split("/")[0]])
    assert mirrored["iterations"] == single["iterations"]  # the same steps were skipped (float16)


def test_a_batch_that_does_not_split_over_the_replicas_is_refused(matrix):
    assert matrix["odd-batch"] == "batch_size 7 must be divisible by the 2 replicas over 1 worker(s)"


def test_float16_overflow_on_one_replica_breaks_keras_loss_scaling():
    """Keras' LossScaleOptimizer checks replica 0 only: NaN weights (the scenario overflows on one replica)."""
    keras_model = _check("overflow-keras")["overflow-keras"]
    assert np.isnan(keras_model["losses"][-1]), "the scenario must overflow on one replica only"


@pytest.mark.parametrize("mode", ["overflow-ours", "overflow-ours-jit"])
def test_float16_overflow_on_one_replica_skips_the_step_everywhere(mode):
    """Ours skips the step on every replica (graph mode and per-replica XLA), so the weights stay finite."""
    ours = _check(mode)[mode]
    assert np.all(np.isfinite(ours["losses"])) and ours["iterations"] >= 5
