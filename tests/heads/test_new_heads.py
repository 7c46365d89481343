"""State, randomness and extra terms of the heads after ArcFace (their formulas are checked against
the float64 reference in test_reference.py): sub-centre cleaning, CurricularFace's t, AdaFace's
norm statistics, MagFace's regulariser, ElasticFace's draws."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.heads import (
    AdaFaceLayer,
    ArcFaceLayer,
    CurricularFaceLayer,
    ElasticArcFaceLayer,
    ElasticCosFaceLayer,
    MagFaceLayer,
    PartialFCLayer,
    SubCenterArcFaceLayer,
)
from tests.testing import finite_difference, reference_loss, value_and_grads

pytestmark = pytest.mark.backend_neutral


def _np(x):
    return ops.convert_to_numpy(x)


def test_subcenter_outliers_and_dominant_centres(rng):
    """Class j's sub-centre 0 is e_j; noisy samples sit near sub-centre 2, far from it."""
    dim, classes, k = 8, 3, 3
    head = SubCenterArcFaceLayer(classes, subcenters=k)
    head.build((None, dim))
    kernel = np.zeros((dim, classes * k), "float32")
    for j in range(classes):
        kernel[j, j * k] = 1.0                      # dominant: e_j
        kernel[3 + j, j * k + 1] = 1.0              # unused
        kernel[6 + (j % 2), j * k + 2] = 1.0        # the noise's sub-centre, 90 degrees from e_j
    head.kernel.assign(kernel)
    labels = np.repeat(np.arange(classes), 10)
    clean = np.eye(dim, dtype="float32")[labels] + 0.1 * rng.standard_normal((30, dim)).astype("float32")
    noisy_rows = np.array([3, 14, 25])
    clean[noisy_rows] = np.eye(dim, dtype="float32")[6 + labels[noisy_rows] % 2] + 0.05
    np.testing.assert_array_equal(head.dominant_subcenters(clean, labels), [0, 0, 0])
    mask = head.outlier_mask(clean, labels, max_angle_degrees=75)
    np.testing.assert_array_equal(np.flatnonzero(mask), noisy_rows)
    # the noisy samples' own logit uses the nearest sub-centre (their noise centre), not e_j
    cos = _np(head.cosine(clean[noisy_rows]))
    assert np.all(cos[np.arange(3), labels[noisy_rows]] > 0.9)
    arcface = head.to_arcface(clean, labels)
    assert isinstance(arcface, ArcFaceLayer) and arcface.margin == head.margin
    np.testing.assert_array_equal(_np(arcface.kernel), kernel[:, ::k])
    with pytest.raises(ValueError, match="labels must lie"):
        head.outlier_mask(clean, labels + 5)


def test_curricular_t_is_a_moving_average_updated_before_use(rng):
    head = CurricularFaceLayer(4, scale=64.0, margin=0.5)
    x = rng.standard_normal((6, 5)).astype("float32")
    y = np.array([0, 1, 2, 3, 0, 1], "int32")
    head.build((None, 5))
    cos_y = _np(head.cosine(x))[np.arange(6), y]
    head([x, y], training=True)
    assert float(_np(head.t)) == pytest.approx(0.01 * cos_y.mean(), rel=1e-5)
    head([x, y], training=True)
    assert float(_np(head.t)) == pytest.approx(0.99 * 0.01 * cos_y.mean() + 0.01 * cos_y.mean(), rel=1e-5)
    before = float(_np(head.t))
    head([x, y])  # not training: no update
    with pytest.warns(UserWarning, match="without labels"):
        head(x, training=True)  # no labels: no margin, no update
    assert float(_np(head.t)) == before
    with pytest.raises(NotImplementedError, match="once per step"):
        head.margin_loss()


def test_adaface_statistics_and_the_two_ends_of_its_margin(rng):
    head = AdaFaceLayer(3, scale=10.0, margin=0.4, h=0.333)
    x = rng.standard_normal((8, 4)).astype("float32") * rng.uniform(0.5, 30, (8, 1)).astype("float32")
    y = rng.integers(0, 3, 8).astype("int32")
    head([x, y], training=True)
    norms = np.linalg.norm(x, axis=1)
    assert float(_np(head.batch_mean)) == pytest.approx(0.99 * 20 + 0.01 * norms.mean(), rel=1e-5)
    assert float(_np(head.batch_std)) == pytest.approx(0.99 * 100 + 0.01 * norms.std(ddof=1), rel=1e-5)
    # z = -1 is ArcFace's cos(theta + m); z = +1 is cos(theta - m) - 2m
    head.batch_mean.assign(10.0)
    head.batch_std.assign(0.001)
    theta = 1.0
    for norm, want in ((1.0, math.cos(theta + 0.4)), (50.0, math.cos(theta - 0.4) - 0.8)):
        kernel = _np(head.kernel)
        centre = kernel[:, 0] / np.linalg.norm(kernel[:, 0])
        other = rng.standard_normal(4)
        other -= other @ centre * centre
        other /= np.linalg.norm(other)
        emb = (norm * (math.cos(theta) * centre + math.sin(theta) * other))[None].astype("float32")
        logit = _np(head([emb, np.array([0], "int32")]))[0, 0]
        assert logit == pytest.approx(10.0 * want, abs=1e-4)
    with pytest.raises(NotImplementedError, match="embedding's norm"):
        head.margin_loss()


def test_magface_regulariser_value_and_gradient_match_the_reference(rng):
    if keras.backend.backend() == "tensorflow":  # JAX ops canonicalise float64 to float32
        keras.config.set_floatx("float64")
    try:
        dtype = "float64" if keras.backend.backend() == "tensorflow" else "float32"
        params = {"scale": 16.0, "lower_norm": 1.0, "upper_norm": 5.0, "lower_margin": 0.45,
                  "upper_margin": 0.8, "lambda_g": 35.0}
        head = MagFaceLayer(4, dtype=dtype, **params)
        head.build((None, 5))
        x = (rng.standard_normal((6, 5)) * rng.uniform(0.3, 2.5, (6, 1))).astype(dtype)
        y = np.array([0, 1, 2, 3, 0, 1], "int32")
        kernel = _np(head.kernel).astype("float64")

        def loss(embeddings, kernel_value):
            logits, _, losses = head.stateless_call([kernel_value], head.non_trainable_variables, [embeddings, y],
                                                    training=True, return_losses=True)
            ce = ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            return ce + sum(losses)

        value, grads = value_and_grads(loss, x, kernel.astype(dtype))
        x64 = x.astype("float64")

        def ref():
            a = np.clip(np.linalg.norm(x64, axis=1), 1.0, 5.0)
            return (reference_loss("magface", params, x64, kernel, y)
                    + 35.0 * np.mean(a / 25.0 + 1.0 / a))

        tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float64" else dict(rtol=2e-3, atol=2e-3)
        assert float(value) == pytest.approx(ref(), rel=tol["rtol"])
        np.testing.assert_allclose(grads[0], finite_difference(ref, x64), **tol)
        np.testing.assert_allclose(grads[1], finite_difference(ref, kernel), **tol)
        head([x, y])  # not training: no regulariser
        assert not head.losses
    finally:
        keras.config.set_floatx("float32")


@pytest.mark.parametrize("layer_class, mean", [(ElasticArcFaceLayer, 0.5), (ElasticCosFaceLayer, 0.35)])
def test_elastic_margins_are_drawn_per_sample_from_a_normal(layer_class, mean):
    head = layer_class(2, scale=1.0, margin=mean, std=0.05, seed=7)
    head.build((None, 2))
    head.kernel.assign(np.eye(2, dtype="float32"))
    theta = 0.6
    n = 4000
    x = np.tile(np.array([[math.cos(theta), math.sin(theta)]], "float32"), (n, 1))
    y = np.zeros(n, "int32")
    target = _np(head([x, y], training=True))[:, 0].astype("float64")
    margins = (np.arccos(target) - theta) if layer_class is ElasticArcFaceLayer else (math.cos(theta) - target)
    assert margins.mean() == pytest.approx(mean, abs=0.004)
    assert margins.std() == pytest.approx(0.05, abs=0.004)
    again = _np(head([x, y], training=True))[:, 0]
    assert not np.allclose(again, target)  # fresh draws each step
    evaluation = _np(head([x, y]))[:, 0]  # outside training: the mean margin
    want = math.cos(theta + mean) if layer_class is ElasticArcFaceLayer else math.cos(theta) - mean
    np.testing.assert_allclose(evaluation, want, atol=1e-6)
    twin = layer_class(2, scale=1.0, margin=mean, std=0.05, seed=7)
    twin.build((None, 2))
    twin.kernel.assign(np.eye(2, dtype="float32"))
    np.testing.assert_allclose(_np(twin([x, y], training=True))[:, 0], target, atol=1e-7)  # seeded


@pytest.mark.parametrize("layer_class, kwargs", [
    (CurricularFaceLayer, {}), (AdaFaceLayer, {}), (ElasticArcFaceLayer, {}),
    (PartialFCLayer, {"sample_rate": 0.8}),
], ids=["curricularface", "adaface", "elastic_arcface", "partial_fc"])
def test_state_survives_keras_and_weights_round_trips(layer_class, kwargs, rng, tmp_path):
    """t, AdaFace's mu and sigma, and the seed generators' state are saved and restored."""
    images = keras.Input((8,))
    labels = keras.Input((), dtype="int32")
    head = layer_class(5, name="head", **kwargs)
    model = keras.Model([images, labels], head([keras.layers.Dense(6)(images), labels]))
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.standard_normal((16, 8)).astype("float32")
    y = rng.integers(0, 5, 16).astype("int32")
    model.fit([x, y], y, batch_size=4, epochs=1, verbose=0)
    state = [_np(v) for v in head.non_trainable_variables]
    assert state and any(np.any(s != 0) for s in state)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").get_layer("head")
    for want, got in zip(state, [_np(v) for v in loaded.non_trainable_variables]):
        np.testing.assert_array_equal(got, want)
    model.save_weights(tmp_path / "m.weights.h5")
    fresh_head = layer_class(5, name="head", **kwargs)
    fresh = keras.Model([images, labels], fresh_head([keras.layers.Dense(6)(images), labels]))
    fresh.load_weights(tmp_path / "m.weights.h5")
    for want, got in zip(state, [_np(v) for v in fresh_head.non_trainable_variables]):
        np.testing.assert_array_equal(got, want)
