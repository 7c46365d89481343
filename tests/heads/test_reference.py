"""Each head against its float64 NumPy reference: logits and gradients, at chosen angles."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from tests.heads.cases import CASE_IDS, HEAD_CASES, angles_to_test, reference_params, set_test_state
from tests.testing import (
    embeddings_at_angles,
    finite_difference,
    head_loss_fn,
    reference_logits,
    reference_loss,
    value_and_grads,
)

pytestmark = pytest.mark.backend_neutral

# Keras canonicalises float64 to float32 in its JAX ops (keras.src.backend.common.dtypes,
# BIT64_TO_BIT32_DTYPE), so on JAX the heads are checked in float32 against the same float64
# reference, with float32 tolerances.
if keras.backend.backend() == "jax":
    DTYPE, LOGIT_TOL, GRAD_RTOL, GRAD_ATOL = "float32", dict(rtol=2e-5, atol=2e-4), 2e-3, 2e-4
else:
    DTYPE, LOGIT_TOL, GRAD_RTOL, GRAD_ATOL = "float64", dict(rtol=1e-9, atol=1e-9), 1e-5, 1e-6

NUM_CLASSES, DIM = 5, 6


def _build(head_class, kwargs, rng, dtype=DTYPE):
    head = head_class(NUM_CLASSES, dtype=dtype, **kwargs)
    head.build((None, DIM))
    kernel = rng.standard_normal(tuple(head.kernel.shape))
    subcenters = getattr(head, "subcenters", 1)
    if subcenters > 1:  # sub-centres of a class near each other, so theta_y follows the chosen angle
        kernel = np.repeat(kernel[:, ::subcenters], subcenters, axis=1) + 0.1 * kernel
    head.kernel.assign(kernel)
    set_test_state(head)
    if getattr(head, "bias", None) is not None:
        head.bias.assign(rng.standard_normal(NUM_CLASSES))
    return head


def _inputs(head, breakpoints, rng):
    thetas = angles_to_test(breakpoints)
    labels = rng.integers(0, NUM_CLASSES, len(thetas))
    kernel = ops.convert_to_numpy(head.kernel)[:, ::getattr(head, "subcenters", 1)]
    x_angles = embeddings_at_angles(kernel, labels, thetas, rng, norm=2.5)
    x_random = rng.standard_normal((6, DIM)) * rng.uniform(0.5, 4.0, (6, 1))
    return np.concatenate([x_angles, x_random]), np.concatenate(
        [labels, rng.integers(0, NUM_CLASSES, 6)]).astype("int32")


def _bias(head):
    return None if getattr(head, "bias", None) is None else ops.convert_to_numpy(head.bias)


def _setup(case, rng):
    """(reference name, built head, embeddings, labels, reference parameters) for a case."""
    _, name, head_class, kwargs, breakpoints = case
    head = _build(head_class, kwargs, rng)
    x, labels = _inputs(head, breakpoints, rng)
    params = reference_params(head)
    if name == "adaface":  # the layer detaches the norm: the reference holds it fixed
        params["norms"] = np.linalg.norm(x, axis=1)
    return name, head, x, labels, params


@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_logits_match_float64_reference(case, rng):
    name, head, x, labels, params = _setup(case, rng)
    kernel = ops.convert_to_numpy(head.kernel)
    got = np.asarray(head([x, labels]))
    want = reference_logits(name, params, x, kernel, labels, _bias(head))
    np.testing.assert_allclose(got, want, **LOGIT_TOL)
    got_free = np.asarray(head(x))
    want_free = reference_logits(name, params, x, kernel, None, _bias(head))
    np.testing.assert_allclose(got_free, want_free, **LOGIT_TOL)


@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_gradients_match_finite_differences(case, rng):
    name, head, x, labels, params = _setup(case, rng)
    kernel = ops.convert_to_numpy(head.kernel).astype("float64")
    bias = _bias(head)
    extra = [] if bias is None else [bias.astype("float64")]
    value, grads = value_and_grads(head_loss_fn(head, labels), x.astype(DTYPE), kernel.astype(DTYPE),
                                   *[e.astype(DTYPE) for e in extra])

    def ref():
        return reference_loss(name, params, x, kernel, labels, extra[0] if extra else None)

    assert value == pytest.approx(ref(), rel=LOGIT_TOL["rtol"] * 10)
    tol = dict(rtol=GRAD_RTOL, atol=GRAD_ATOL)
    np.testing.assert_allclose(grads[0], finite_difference(ref, x), **tol)
    np.testing.assert_allclose(grads[1], finite_difference(ref, kernel), **tol)
    if extra:
        np.testing.assert_allclose(grads[2], finite_difference(ref, extra[0]), **tol)


@pytest.mark.parametrize("dtype", sorted({DTYPE, "float32"}))
@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_exact_centre_opposite_and_zero_embeddings_are_finite(case, dtype, rng):
    """theta = 0 exactly, theta = pi exactly and x = 0: no NaN/Inf in logits or gradients."""
    _, _, head_class, kwargs, _ = case
    head = _build(head_class, kwargs, rng, dtype=dtype)
    kernel = ops.convert_to_numpy(head.kernel).astype(dtype)
    labels = np.array([0, 1, 2, 3], "int32")
    centres = (kernel / np.linalg.norm(kernel, axis=0)).T
    x = np.stack([2 * centres[0], -3 * centres[1], np.zeros(DIM), centres[3]]).astype(dtype)
    extra = [] if getattr(head, "bias", None) is None else [ops.convert_to_numpy(head.bias).astype(dtype)]
    value, grads = value_and_grads(head_loss_fn(head, labels), x, kernel, *extra)
    assert np.isfinite(value)
    for grad in grads:
        assert np.all(np.isfinite(grad))
    assert np.all(np.isfinite(np.asarray(head([x, labels]))))


ANGULAR_CASES = [case for case in HEAD_CASES if case[1] != "softmax"]  # softmax's logit is W^T x + b


@pytest.mark.parametrize("case", ANGULAR_CASES, ids=[case[0] for case in ANGULAR_CASES])
def test_target_logit_never_increases_with_theta(case):
    """The decision-margin picture: in 2-D, x = (cos t, sin t) against class centre (1, 0)."""
    _, name, head_class, kwargs, _ = case
    head = head_class(2, dtype="float32", **kwargs)
    head.build((None, 2))
    head.kernel.assign(np.repeat(np.eye(2, dtype="float32"), head.kernel.shape[1] // 2, axis=1))
    thetas = np.linspace(0, math.pi, 4001)
    x = np.stack([np.cos(thetas), np.sin(thetas)], axis=1).astype("float32")
    target = np.asarray(head([x, np.zeros(len(x), "int32")]))[:, 0]
    assert np.all(np.isfinite(target))
    steps = np.diff(target)
    if kwargs.get("easy_margin"):
        # easy_margin is monotonic on each side of pi/2, where it jumps up by s sin m: by design
        # (the margin is switched off for cos theta <= 0), as in InsightFace's easy_margin.
        jump = np.argmax(steps)
        assert thetas[jump] <= math.pi / 2 <= thetas[jump + 1]
        assert steps[jump] == pytest.approx(64 * math.sin(0.5), abs=0.1)
        steps = np.delete(steps, jump)
    # float32 cosines are accurate to ~1e-7; allow that much non-monotonic jitter times the scale
    assert np.all(steps <= 64 * 2e-6), steps.max()
    assert target[0] > target[-1]
