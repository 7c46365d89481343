"""Where a computation is compiled (eager, graph mode, XLA) and XLA islands: a function compiled by XLA
inside a TensorFlow graph-mode step, and the cosines of every head computed that way equal to the eager
ones."""

import keras
import numpy as np
import pytest

from keras_arcface.compilation import computation_target, tracing_for_tensorflow_xla, xla_island

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA islands are TensorFlow's")


def test_the_computation_target_follows_the_compiler():
    import tensorflow as tf

    device = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    seen = []

    def probe(x):
        seen.append(computation_target())
        return x

    probe(tf.constant(1.0))
    tf.function(probe)(tf.constant(1.0))
    tf.function(probe, jit_compile=True)(tf.constant(1.0))
    assert seen == [("tensorflow", device), ("tensorflow", device), ("xla", device)]


def test_an_island_compiles_only_inside_a_graph_mode_step():
    import tensorflow as tf

    seen = []

    @xla_island
    def double(x):
        seen.append(tracing_for_tensorflow_xla())
        return 2.0 * x

    x = tf.ones((3,))
    np.testing.assert_array_equal(double(x).numpy(), [2.0, 2.0, 2.0])  # eager: as it is
    np.testing.assert_array_equal(tf.function(double)(x).numpy(), [2.0, 2.0, 2.0])  # graph: an island
    tf.function(double, jit_compile=True)(x)  # under XLA already: traced inline
    assert seen == [False, True, True]
    tf.function(double)(x)  # another graph-mode step reuses the island's trace: the body is not run again
    assert seen == [False, True, True]


def test_graph_mode_cosines_and_gradients_equal_the_eager_ones(rng):
    import tensorflow as tf

    from keras_arcface.heads.base import cosine_matrix

    x = tf.constant(rng.standard_normal((6, 8)).astype("float32"))
    w = tf.Variable(rng.standard_normal((8, 5)).astype("float32"))
    x = tf.concat([x[:5], tf.zeros((1, 8))], axis=0)  # a zero embedding: the floored norm's path
    upstream = tf.constant(rng.standard_normal((6, 5)).astype("float32"))

    def value_and_gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = cosine_matrix(x, w, 30.0)
            loss = tf.reduce_sum(logits * upstream)
        return (logits, *tape.gradient(loss, [x, w]))

    eager = value_and_gradients(x)
    graph = tf.function(value_and_gradients)(x)
    for want, got in zip(eager, graph):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
