"""Triplet loss against a float64 loop-by-loop reference: values, gradients, mining, precision, training."""

import itertools

import keras
import numpy as np
import pytest

from keras_arcface.losses import TripletLoss, pairwise_distances
from tests.testing import finite_difference, value_and_grads

pytestmark = pytest.mark.backend_neutral


def reference_distances(x, distance):
    n = len(x)
    d = np.zeros((n, n))
    for i, j in itertools.product(range(n), range(n)):
        if i == j:
            continue
        if distance == "cosine":
            d[i, j] = 1 - x[i] @ x[j] / np.linalg.norm(x[i]) / np.linalg.norm(x[j])
        else:
            d[i, j] = np.sum((x[i] - x[j]) ** 2)
            if distance == "l2":
                d[i, j] = np.sqrt(d[i, j])
    return d


def reference_loss(x, labels, margin, mining, distance, soft=False):
    """The definitions, one anchor and one pair at a time."""
    d = reference_distances(np.asarray(x, np.float64), distance)
    n = len(labels)
    terms = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(n) if labels[q] != labels[a]]
        if not positives or not negatives:
            continue
        if mining == "hard":
            gap = max(d[a, p] for p in positives) - min(d[a, q] for q in negatives)
            terms.append(np.log1p(np.exp(gap)) if soft else max(gap + margin, 0.0))
            continue
        for p in positives:
            farther = [d[a, q] for q in negatives if d[a, q] > d[a, p]]
            chosen = min(farther) if farther else max(d[a, q] for q in negatives)
            terms.append(max(d[a, p] - chosen + margin, 0.0))
    return float(np.mean(terms)) if terms else 0.0


CASES = [("semi_hard", "l2", False), ("semi_hard", "squared_l2", False), ("semi_hard", "cosine", False),
         ("hard", "l2", False), ("hard", "cosine", False), ("hard", "l2", True)]
DTYPE = "float64" if keras.backend.backend() == "tensorflow" else "float32"


@pytest.mark.parametrize("mining, distance, soft", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_value_and_gradient_match_the_reference(mining, distance, soft, rng):
    x = rng.standard_normal((10, 4))
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4])  # 3 and 4 have no positive
    loss = TripletLoss(margin=0.3, mining=mining, distance=distance, soft=soft)
    value, (grad,) = value_and_grads(lambda e: loss(labels, e), x.astype(DTYPE))

    def ref():
        return reference_loss(x, labels, 0.3, mining, distance, soft)

    # the loss computes in float32 (like the heads' logits), so float32 tolerances
    assert float(value) == pytest.approx(ref(), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(grad, finite_difference(ref, x, step=1e-5), rtol=2e-3, atol=2e-4)


def test_semi_hard_picks_the_closest_farther_negative_else_the_farthest():
    """By hand, 1-D, margin 1: label 0 at 0 and 1; label 1 at 0.5, 1.5 and 3.

    (a, p): d_ap, chosen negative distance, loss
    (0, 1): 1, 1.5 (closest beyond 1), 0.5    (1, 0): 1, 2 (only one beyond 1), 0
    (0.5, 1.5): 1, none beyond -> farthest 0.5, 1.5    (0.5, 3): 2.5, farthest 0.5, 3
    (1.5, 0.5): 1, 1.5, 0.5    (1.5, 3): 1.5, none beyond (1.5 is not) -> 1.5, 1
    (3, 0.5): 2.5, 3, 0.5    (3, 1.5): 1.5, 2, 0.5         mean = 7.5 / 8
    """
    x = np.array([[0.0], [1.0], [0.5], [1.5], [3.0]], "float32")
    labels = np.array([0, 0, 1, 1, 1])
    assert float(TripletLoss(margin=1.0, mining="semi_hard")(labels, x)) == pytest.approx(7.5 / 8)
    # batch-hard: anchors 0, 1: 1 - 0.5 + 1 = 1.5, 1 - 0.5 + 1 = 1.5; 0.5: 2.5 - 0.5 + 1 = 3;
    # 1.5: 1.5 - 0.5 + 1 = 2; 3: 2.5 - 2 + 1 = 1.5 -> 9.5 / 5
    assert float(TripletLoss(margin=1.0, mining="hard")(labels, x)) == pytest.approx(9.5 / 5)


def test_no_valid_triplet_gives_zero_and_coincident_points_give_finite_gradients():
    x = np.zeros((4, 3), "float32")
    value, (grad,) = value_and_grads(lambda e: TripletLoss()(np.array([0, 0, 1, 1]), e), x)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert float(TripletLoss()(np.array([0, 1, 2, 3]), np.eye(4, dtype="float32"))) == 0.0
    d = keras.ops.convert_to_numpy(pairwise_distances(np.eye(3, dtype="float32")))
    np.testing.assert_allclose(d, np.sqrt(2) * (1 - np.eye(3)), rtol=1e-6)


def test_half_precision_embeddings_train_with_xla(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16), keras.layers.Dense(4)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=TripletLoss(margin=3.0), jit_compile=True)
    centres = rng.standard_normal((4, 6)) * 2
    labels = np.repeat(np.arange(4), 8)
    x = (centres[labels] + 0.5 * rng.standard_normal((32, 6))).astype("float32")
    before = float(model.evaluate(x, labels, batch_size=32, verbose=0))
    model.fit(x, labels, batch_size=32, epochs=30, verbose=0)
    after = float(model.evaluate(x, labels, batch_size=32, verbose=0))
    assert before > 0 and np.isfinite(after) and after < before


def test_config_round_trip_and_argument_checks():
    loss = TripletLoss(margin=0.4, mining="hard", distance="cosine", soft=True)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="mining"):
        TripletLoss(mining="easy")
    with pytest.raises(ValueError, match="distance"):
        TripletLoss(distance="l1")
    with pytest.raises(ValueError, match="soft=True"):
        TripletLoss(soft=True)
