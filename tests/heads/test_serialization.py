"""get_config, .keras and .weights.h5 round trips, SphereFace's lambda counter included."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.heads import ArcFaceLayer, SphereFaceLayer
from tests.heads.cases import CASE_IDS, HEAD_CASES

pytestmark = pytest.mark.backend_neutral

DIM, NUM_CLASSES = 6, 5


def _model(head_class, kwargs):
    images = keras.Input((8,), name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    embeddings = keras.layers.Dense(DIM, name="embedding")(images)
    head = head_class(NUM_CLASSES, name="head", **kwargs)
    return keras.Model([images, labels], head([embeddings, labels]))


def _trained(head_class, kwargs, rng):
    model = _model(head_class, kwargs)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.standard_normal((12, 8)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, 12).astype("int32")
    model.fit([x, y], y, batch_size=4, epochs=1, verbose=0)  # 3 steps: SphereFace counter -> 3
    return model, x, y


def _outputs(model, x, y):
    head = model.get_layer("head")
    embeddings = model.get_layer("embedding")(x)
    return (ops.convert_to_numpy(model([x, y])), ops.convert_to_numpy(head(embeddings)))


@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_config_round_trip(case):
    _, _, head_class, kwargs, _ = case
    head = head_class(NUM_CLASSES, **kwargs)
    clone = head_class.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(head))
    assert type(restored) is head_class and restored.get_config() == head.get_config()


@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_keras_archive_round_trip_reproduces_logits_exactly(case, rng, tmp_path):
    _, _, head_class, kwargs, _ = case
    model, x, y = _trained(head_class, kwargs, rng)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for got, want in zip(_outputs(loaded, x, y), _outputs(model, x, y)):
        np.testing.assert_array_equal(got, want)
    if head_class is SphereFaceLayer:
        assert int(ops.convert_to_numpy(loaded.get_layer("head").iteration)) == 3


@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_weights_file_round_trip_reproduces_logits_exactly(case, rng, tmp_path):
    _, _, head_class, kwargs, _ = case
    model, x, y = _trained(head_class, kwargs, rng)
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    fresh = _model(head_class, kwargs)
    fresh.load_weights(path)
    for got, want in zip(_outputs(fresh, x, y), _outputs(model, x, y)):
        np.testing.assert_array_equal(got, want)
    if head_class is SphereFaceLayer:
        head = fresh.get_layer("head")
        assert int(ops.convert_to_numpy(head.iteration)) == 3
        trained_lambda = float(model.get_layer("head").current_lambda())
        assert float(head.current_lambda()) == trained_lambda


def test_sphereface_counter_advances_per_training_step_only(rng):
    head = SphereFaceLayer(NUM_CLASSES)
    x = rng.standard_normal((4, DIM)).astype("float32")
    y = np.array([0, 1, 2, 3], "int32")
    head([x, y])
    head([x, y], training=False)
    with pytest.warns(UserWarning, match="carry no margin"):
        head(x, training=True)
    assert int(ops.convert_to_numpy(head.iteration)) == 0
    for _ in range(5):
        head([x, y], training=True)
    assert int(ops.convert_to_numpy(head.iteration)) == 5
    assert float(head.current_lambda()) == pytest.approx(max(5.0, 1000.0 / 1.6))
    head.iteration.assign(10_000)
    assert float(head.current_lambda()) == pytest.approx(5.0)


def test_compiled_sequential_model_with_margin_loss_round_trips(rng, tmp_path):
    """A Sequential model compiled with head.margin_loss() saves and loads compiled, same loss value."""
    x = rng.standard_normal((8, 8)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, 8).astype("int32")
    head = ArcFaceLayer(NUM_CLASSES, margin=0.4)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(DIM), head])
    model.compile(optimizer="sgd", loss=head.margin_loss())
    model.fit(x, y, verbose=0)
    path = tmp_path / "sequential.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
