"""The two ways users write models (Sequential and functional), inference, and labels."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.heads import (
    HEADS,
    AdaFaceLayer,
    ArcFaceLayer,
    CosFaceLayer,
    CurricularFaceLayer,
    MagFaceLayer,
    MarginLoss,
    SoftmaxLayer,
    SphereFaceLayer,
    get_head,
)
from tests.heads.cases import CASE_IDS, HEAD_CASES, RANDOM_IN_TRAINING, reference_params
from tests.testing import reference_logits, reference_loss

pytestmark = pytest.mark.backend_neutral

DIM, NUM_CLASSES = 6, 5
# the loss form of a random-margin head draws margins, so it cannot equal a fixed reference
LOSS_CASES = [case for case in HEAD_CASES if case[2].no_loss_form is None and case[2] not in RANDOM_IN_TRAINING]


def _data(rng, n=16):
    return (rng.standard_normal((n, 8)).astype("float32"),
            rng.integers(0, NUM_CLASSES, n).astype("int32"))


def _backbone():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(DIM, use_bias=False)], name="backbone")


def _free_loss(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return -(shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))[np.arange(len(labels)), labels].mean()


@pytest.mark.parametrize("case", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_sequential_fit_trains_with_the_margin(case, rng):
    """The README's Sequential form: labels from fit's y; the loss is the margin loss."""
    _, name, head_class, kwargs, _ = case
    x, y = _data(rng)
    backbone = _backbone()
    head = head_class(NUM_CLASSES, **kwargs)
    model = keras.Sequential([backbone, head])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=head.margin_loss())
    loss = float(model.train_on_batch(x, y))  # learning rate 0: the loss at initialisation
    embeddings = ops.convert_to_numpy(backbone(x)).astype("float64")
    kernel = ops.convert_to_numpy(head.kernel).astype("float64")
    bias = ops.convert_to_numpy(head.bias) if getattr(head, "bias", None) is not None else None
    params = reference_params(head)
    want = reference_loss(name, params, embeddings, kernel, y, bias)
    assert loss == pytest.approx(want, rel=1e-5)
    free = _free_loss(reference_logits(name, params, embeddings, kernel, None, bias), y)
    if head.has_margin:
        assert abs(loss - free) > 0.1, "the margin must change the training loss"
    else:
        assert loss == pytest.approx(free, rel=1e-5)
    model.optimizer.learning_rate.assign(0.05 if head.has_margin else 0.5)
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < history[0]


def test_sequential_with_a_plain_loss_warns_that_no_margin_is_applied(rng):
    x, y = _data(rng)
    model = keras.Sequential([_backbone(), ArcFaceLayer(NUM_CLASSES)])
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match="carry no margin"):
        model.train_on_batch(x, y)


@pytest.mark.parametrize("name", sorted(name for name, cls in HEADS.items() if cls.no_loss_form is not None))
def test_heads_without_a_loss_form_say_why_and_how_to_train_them(name):
    head = get_head(name, NUM_CLASSES)
    for make_loss in (head.margin_loss, lambda: MarginLoss(head)):
        with pytest.raises(NotImplementedError) as raised:
            make_loss()
        message = str(raised.value)
        assert type(head).__name__ in message and head.no_loss_form in message
        assert "head([embeddings, labels])" in message


@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_functional_training_and_embedding_model(case, rng):
    """logits = head([embeddings, labels]); the initial loss is the reference margin loss."""
    _, name, head_class, kwargs, _ = case
    x, y = _data(rng)
    images = keras.Input((8,), name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    embeddings = keras.layers.Dense(DIM, use_bias=False, name="embedding")(images)
    head = head_class(NUM_CLASSES, **kwargs)
    train_model = keras.Model([images, labels], head([embeddings, labels]))
    train_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    params = reference_params(head)  # SphereFace: lambda before this step's counter advance
    loss = float(train_model.train_on_batch([x, y], y))
    if isinstance(head, (CurricularFaceLayer, AdaFaceLayer)):
        params = reference_params(head)  # their moving statistics are updated first, then used
    embedding_model = keras.Model(images, embeddings)
    emb = ops.convert_to_numpy(embedding_model(x)).astype("float64")
    bias = ops.convert_to_numpy(head.bias) if getattr(head, "bias", None) is not None else None
    want = reference_loss(name, params, emb, ops.convert_to_numpy(head.kernel).astype("float64"), y, bias)
    if isinstance(head, MagFaceLayer):  # plus the magnitude regulariser lambda_g mean g(a)
        a = np.clip(np.linalg.norm(emb, axis=1), params["lower_norm"], params["upper_norm"])
        want += params["lambda_g"] * np.mean(a / params["upper_norm"] ** 2 + 1 / a)
    if isinstance(head, RANDOM_IN_TRAINING):  # margins drawn per sample: between the extremes
        low = reference_loss(name, {**params, "margin": params["margin"] - 5 * params["std"]}, emb,
                             ops.convert_to_numpy(head.kernel).astype("float64"), y)
        high = reference_loss(name, {**params, "margin": params["margin"] + 5 * params["std"]}, emb,
                              ops.convert_to_numpy(head.kernel).astype("float64"), y)
        assert low < loss < high
    else:
        assert loss == pytest.approx(want, rel=1e-5)
    assert embedding_model.output_shape == (None, DIM)
    train_model.optimizer.learning_rate.assign(0.05)
    history = train_model.fit([x, y], y, epochs=15, verbose=0).history["loss"]
    assert history[-1] < history[0]


def test_labels_as_keyword_argument(rng):
    x, y = _data(rng)
    head = CosFaceLayer(NUM_CLASSES)
    emb = keras.layers.Dense(DIM)(x)
    np.testing.assert_array_equal(ops.convert_to_numpy(head(emb, labels=y)),
                                  ops.convert_to_numpy(head([emb, y])))
    with pytest.raises(ValueError, match="twice"):
        head([emb, y], labels=y)


@pytest.mark.parametrize("case", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_margin_loss_equals_cross_entropy_of_labelled_head(case, rng):
    _, _, head_class, kwargs, _ = case
    emb = rng.standard_normal((12, DIM)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, 12).astype("int32")
    head = head_class(NUM_CLASSES, **kwargs)
    labelled = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, head([emb, y]))
    via_loss = head.margin_loss()(y, head(emb))
    assert float(via_loss) == pytest.approx(float(labelled), rel=1e-5)


# ---- labels ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    ([0, 1, 5], r"in \[0, 5\); got \[5\] at positions \[2\]"),
    ([0, -1, 2], r"got \[-1\] at positions \[1\]"),
    ([0.0, 1.5, 2.0], r"non-integer values \[1.5\]"),
])
def test_bad_labels_raise_clear_errors_in_eager_mode(bad, message, rng):
    emb = rng.standard_normal((3, DIM)).astype("float32")
    for head_class in HEADS.values():
        with pytest.raises(ValueError, match=message):
            head_class(NUM_CLASSES)([emb, np.array(bad)])
    with pytest.raises(ValueError, match=message):
        ArcFaceLayer(NUM_CLASSES).margin_loss()(np.array(bad), np.zeros((3, NUM_CLASSES), "float32"))


def test_label_shapes_and_dtypes(rng):
    emb = rng.standard_normal((3, DIM)).astype("float32")
    head = ArcFaceLayer(NUM_CLASSES)
    want = ops.convert_to_numpy(head([emb, np.array([0, 1, 2])]))
    for labels in (np.array([[0], [1], [2]]), np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2], "uint8")):
        np.testing.assert_array_equal(ops.convert_to_numpy(head([emb, labels])), want)
    with pytest.raises(ValueError, match="shape"):
        head([emb, np.zeros((3, 2), "int32")])
    with pytest.raises(TypeError, match="dtype"):
        head([emb, np.array([True, False, True])])


def _compiled(fn, jit):
    """fn compiled as a graph: tf.function (optionally XLA) or jax.jit."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit)
    import jax

    return jax.jit(fn)


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_invalid_labels_in_compiled_graphs_get_no_margin_and_zero_loss(jit, rng):
    emb = rng.standard_normal((4, DIM)).astype("float32")
    head = ArcFaceLayer(NUM_CLASSES)
    free = ops.convert_to_numpy(head(emb))
    labels = np.array([1, 7, -3, 2], "int32")
    logits = ops.convert_to_numpy(_compiled(lambda e, y: head([e, y]), jit)(emb, labels))
    np.testing.assert_allclose(logits[1:3], free[1:3], rtol=1e-6, atol=1e-5)  # graph rounding only
    assert np.abs(logits[[0, 3]] - free[[0, 3]]).max() > 1.0  # valid rows do get the margin
    float_labels = np.array([1.0, 2.5, np.nan, 2.0], "float32")
    logits = ops.convert_to_numpy(_compiled(lambda e, y: head([e, y]), jit)(emb, float_labels))
    np.testing.assert_allclose(logits[1:3], free[1:3], rtol=1e-6, atol=1e-5)
    loss = MarginLoss(head, reduction=None)
    rows = ops.convert_to_numpy(_compiled(lambda y, p: loss(y, p), jit)(labels, free))
    assert rows[1] == 0.0 and rows[2] == 0.0 and np.all(rows[[0, 3]] > 0) and np.all(np.isfinite(rows))


def test_registry_and_constructor_checks():
    assert isinstance(get_head("ArcFace", 10, margin=0.4), ArcFaceLayer)
    assert get_head("arcface", 10, margin=0.4).margin == 0.4
    with pytest.raises(ValueError, match="unknown head"):
        get_head("nope", 3)
    with pytest.raises(ValueError, match="num_classes"):
        SoftmaxLayer(0)
    with pytest.raises(ValueError, match=r"margin must be an integer in \[1, inf\), got 1.5"):
        SphereFaceLayer(3, margin=1.5)
