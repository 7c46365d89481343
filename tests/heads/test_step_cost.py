"""The fast step's hand-written gradients equal automatic differentiation of the plain formulas, and the
head benchmark runs every kind of runner (tiny sizes; the timings themselves are in docs/heads.md)."""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.heads.base import cosine_matrix, replace_target_column, target_column
from tests.testing import value_and_grads

DTYPE = "float64" if keras.backend.backend() == "tensorflow" else "float32"  # JAX ops run float64 as float32
TOL = dict(rtol=1e-10, atol=1e-12) if DTYPE == "float64" else dict(rtol=2e-4, atol=2e-5)


def _plain_scaled_cosines(x, w, scale):
    """scale x W / (||x|| ||W_j||), differentiated automatically (floors as in the head)."""
    x_unit = x / ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), 1e-12))
    return scale * ops.matmul(x_unit, w) / ops.sqrt(ops.maximum(ops.sum(w * w, axis=0), 1e-12))


@pytest.mark.backend_neutral
def test_cosine_matrix_gradient_equals_automatic_differentiation(rng):
    x = rng.standard_normal((7, 5)) * rng.uniform(0.1, 3.0, (7, 1))
    x[2] = 0.0  # a zero embedding: its norm is floored
    w = rng.standard_normal((5, 9))
    w[:, 4] = 0.0  # a zero centre
    upstream = rng.standard_normal((7, 9))
    arrays = [a.astype(DTYPE) for a in (x, w, upstream)]

    def loss(function):
        return lambda x, w, upstream: ops.sum(upstream * function(x, w, 64.0))

    fast_value, fast_grads = value_and_grads(loss(cosine_matrix), *arrays)
    plain_value, plain_grads = value_and_grads(loss(_plain_scaled_cosines), *arrays)
    np.testing.assert_allclose(fast_value, plain_value, **TOL)
    for fast, plain in zip(fast_grads, plain_grads):
        np.testing.assert_allclose(fast, plain, **TOL)


@pytest.mark.backend_neutral
def test_target_swap_gradient_equals_a_one_hot_swap(rng):
    """target_column + replace_target_column (gather and scatter of B entries, one in-place gradient)
    against the one-hot select it replaces; a row labelled -1 stays unchanged."""
    matrix = rng.standard_normal((6, 8))
    upstream = rng.standard_normal((6, 8))
    labels = np.array([3, 0, -1, 7, 3, 5], "int32")

    def fast(matrix, upstream):
        kept, current = target_column(matrix, labels)
        swapped = replace_target_column(kept, labels, ops.sin(current) * current, current)
        return ops.sum(upstream * swapped * swapped)

    def one_hot(matrix, upstream):
        is_target = ops.equal(ops.arange(8, dtype="int32")[None, :], labels[:, None])
        swapped = ops.where(is_target, ops.sin(matrix) * matrix, matrix)
        return ops.sum(upstream * swapped * swapped)

    arrays = [a.astype(DTYPE) for a in (matrix, upstream)]
    fast_value, fast_grads = value_and_grads(fast, *arrays)
    want_value, want_grads = value_and_grads(one_hot, *arrays)
    np.testing.assert_allclose(fast_value, want_value, **TOL)
    np.testing.assert_allclose(fast_grads[0], want_grads[0], **TOL)


def _bench_heads():
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_heads.py"
    spec = importlib.util.spec_from_file_location("bench_heads", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("runner", ["floor-tf", "keras-arcface-graph", "keras-combined-xla",
                                    "keras-partial_fc-graph"])
def test_bench_heads_runs_each_tensorflow_runner(runner):
    bench = _bench_heads()
    row = bench.run_one(runner, batch=4, dim=3, classes=40, steps=2, warmup=1, seed=0)
    assert row["runner"] == runner and row["classes"] == 40
    assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]
    assert row["peak_rss_mib"] > 0


def test_bench_heads_table_divides_by_the_floor_at_the_same_size():
    bench = _bench_heads()
    rows = [{"runner": "floor-tf", "classes": 10, "median_s": 0.2, "min_s": 0.1, "max_s": 0.3, "peak_rss_mib": 1},
            {"runner": "keras-arcface-xla", "classes": 10, "median_s": 0.25, "min_s": 0.2, "max_s": 0.3,
             "peak_rss_mib": 1},
            {"runner": "pml-arcface", "classes": 20, "median_s": 1.0, "min_s": 1.0, "max_s": 1.0, "peak_rss_mib": 1}]
    lines = bench.table(rows).splitlines()
    assert lines[3] == "| keras-arcface-xla | 10 | 250 | 200-300 | 1.25 | 1 |"
    assert lines[4] == "| pml-arcface | 20 | 1000 | 1000-1000 | - | 1 |"
    assert bench.default_runners(1_000_000) == bench.MILLION_RUNNERS
    with pytest.raises(ValueError, match="unknown runner 'keras-arcface'"):
        bench.make_step("keras-arcface", 4, 3, 40, 0)
