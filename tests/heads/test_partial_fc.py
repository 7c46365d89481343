"""Partial FC: sampling, equality with the full head at r = 1, sparse gradients, sharding."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.heads import ArcFaceLayer, PartialFCLayer
from keras_arcface.heads.partial_fc import UNSAMPLED_LOGIT
from tests.testing import reference_logits, value_and_grads

pytestmark = pytest.mark.backend_neutral
ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
ARC = {"scale": 64.0, "margin": 0.5}


def _head(classes, rate, dim=6, seed=1, **kwargs):
    head = PartialFCLayer(classes, rate, "arcface", ARC, seed=seed, **kwargs)
    head.build((None, dim))
    return head


def test_at_rate_one_it_is_the_full_head(rng):
    head = _head(7, 1.0)
    arcface = ArcFaceLayer(7, **ARC)
    arcface.build((None, 6))
    arcface.kernel.assign(head.kernel)
    x = rng.standard_normal((5, 6)).astype("float32")
    y = rng.integers(0, 7, 5).astype("int32")
    np.testing.assert_array_equal(ops.convert_to_numpy(head([x, y], training=True)),
                                  ops.convert_to_numpy(arcface([x, y], training=True)))


def test_sampled_step_keeps_positives_and_matches_the_reference_on_sampled_classes(rng):
    classes, rate = 40, 0.2  # S = 8
    head = _head(classes, rate)
    assert head.num_sampled == 8
    x = rng.standard_normal((5, 6)).astype("float32")
    y = np.array([3, 17, 3, 29, 0], "int32")
    logits = ops.convert_to_numpy(head([x, y], training=True))
    assert logits.shape == (5, classes)
    sampled = np.flatnonzero(logits[0] != UNSAMPLED_LOGIT)
    assert len(sampled) == 8 and set(y) <= set(sampled)
    assert np.all((logits != UNSAMPLED_LOGIT) == np.isin(np.arange(classes), sampled)[None])
    kernel = ops.convert_to_numpy(head.kernel).astype("float64")
    # the margin softmax restricted to the sampled centres, labels re-indexed into them
    want = reference_logits("arcface", ARC, x, kernel[:, sampled], np.searchsorted(sampled, y))
    np.testing.assert_allclose(logits[:, sampled], want, rtol=1e-5, atol=1e-4)
    # cross-entropy over all C columns equals the one over the sampled columns
    ce = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
    ce_sampled = keras.losses.sparse_categorical_crossentropy(np.searchsorted(sampled, y), logits[:, sampled],
                                                              from_logits=True)
    np.testing.assert_allclose(ops.convert_to_numpy(ce), ops.convert_to_numpy(ce_sampled), rtol=1e-6)
    other = ops.convert_to_numpy(head([x, y], training=True))
    assert not np.array_equal(other != UNSAMPLED_LOGIT, logits != UNSAMPLED_LOGIT)  # a new sample each step
    np.testing.assert_array_equal(ops.convert_to_numpy(head(x)).shape, (5, classes))  # inference: all


def test_only_sampled_centres_get_a_gradient(rng):
    head = _head(30, 0.2)
    x = rng.standard_normal((4, 6)).astype("float32")
    y = np.array([1, 5, 9, 1], "int32")
    seed_state = [v.value for v in head.non_trainable_variables]

    def loss(kernel):
        logits, _ = head.stateless_call([kernel], seed_state, [x, y], training=True)
        return ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))

    logits, _ = head.stateless_call([head.kernel.value], seed_state, [x, y], training=True)
    sampled = np.flatnonzero(ops.convert_to_numpy(logits)[0] != UNSAMPLED_LOGIT)
    _, (grad,) = value_and_grads(loss, ops.convert_to_numpy(head.kernel))
    touched = np.flatnonzero(np.abs(grad).sum(axis=0) > 0)
    np.testing.assert_array_equal(touched, sampled)


def test_too_small_a_sample_and_bad_arguments_are_refused(rng):
    head = _head(20, 0.1)  # S = 2
    with pytest.raises(ValueError, match="raise sample_rate"):
        head([rng.standard_normal((4, 6)).astype("float32"), np.array([0, 1, 2, 3], "int32")], training=True)
    with pytest.raises(ValueError, match="sample_rate"):
        PartialFCLayer(10, 0.0)
    with pytest.raises(ValueError, match="margin_head must be one of"):
        PartialFCLayer(10, 0.5, "sphereface")
    with pytest.raises(NotImplementedError):
        head.margin_loss()


def test_padding_for_shards_is_never_returned(rng):
    head = _head(10, 0.5, num_shards=4)
    assert tuple(head.kernel.shape) == (6, 12)
    x = rng.standard_normal((3, 6)).astype("float32")
    y = np.array([9, 0, 4], "int32")
    assert ops.convert_to_numpy(head([x, y], training=True)).shape == (3, 10)
    assert ops.convert_to_numpy(head(x)).shape == (3, 10)


def _run(script, env_extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **env_extra}
    done = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="runs its own JAX process once, from the "
                    "TensorFlow test run")
def test_jax_model_parallel_shards_the_centres_over_four_devices():
    result = _run("partial_fc_model_parallel_check.py",
                  {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
                   "JAX_PLATFORMS": "cpu"})
    assert result["devices"] == 4
    assert result["kernel_shape"] == [16, 12] and result["shard_shape"] == [16, 3]
    assert result["spec"] == [None, "model"]
    np.testing.assert_allclose(result["sharded_losses"], result["single_losses"], rtol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="MirroredStrategy is TensorFlow's")
def test_tensorflow_mirrored_strategy_replicates_the_centres():
    result = _run("partial_fc_mirrored_check.py", {})
    assert result["replicas"] == 2 and result["kernel_copies"] == 2
    assert all(np.isfinite(result["losses"])) and result["losses"][-1] < result["losses"][0]
    assert result["copies_equal"]
