"""Mixed precision and XLA: heads compute in float32 and train compiled on every backend."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.heads.cases import CASE_IDS, HEAD_CASES, RANDOM_IN_TRAINING, reference_params
from tests.testing import reference_logits

pytestmark = pytest.mark.backend_neutral

POLICIES = ["float32", "mixed_float16", "mixed_bfloat16"]
DIM, NUM_CLASSES = 8, 6


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_half_precision_embeddings_give_float32_logits(case, policy, rng):
    _, name, head_class, kwargs, _ = case
    keras.config.set_dtype_policy(policy)
    head = head_class(NUM_CLASSES, **kwargs)
    half = keras.dtype_policies.get(policy).compute_dtype
    x = ops.cast(rng.standard_normal((10, DIM)) * 3, half)
    y = rng.integers(0, NUM_CLASSES, 10).astype("int32")
    logits = head([x, y])
    assert head.compute_dtype == "float32" and head.kernel.dtype == "float32"
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    x64 = ops.convert_to_numpy(ops.cast(x, "float32")).astype("float64")
    bias = ops.convert_to_numpy(head.bias) if getattr(head, "bias", None) is not None else None
    want = reference_logits(name, reference_params(head), x64,
                            ops.convert_to_numpy(head.kernel).astype("float64"), y, bias)
    # the inputs are the same half-precision values; only float32 arithmetic separates them
    np.testing.assert_allclose(ops.convert_to_numpy(logits), want, rtol=1e-4, atol=2e-3)


def _train_model(head_class, kwargs):
    images = keras.Input((DIM,))
    labels = keras.Input((), dtype="int32")
    x = keras.layers.Dense(16, activation="relu")(images)
    embeddings = keras.layers.Dense(DIM)(x)
    head = head_class(NUM_CLASSES, **kwargs)
    return keras.Model([images, labels], head([embeddings, labels]))


def _fit_losses(case, policy, jit_compile, rng_seed=0, steps=4):
    _, _, head_class, kwargs, _ = case
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(rng_seed)
    model = _train_model(head_class, kwargs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    rng = np.random.default_rng(rng_seed)
    x = rng.standard_normal((steps * 8, DIM)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, steps * 8).astype("int32")
    history = model.fit([x, y], y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return model, history.history["loss"]


#: Every head x every policy.  The default tier trains one head a policy (the first three heads, one each); every
#: head's steps compile under XLA to graph mode's there too, in test_xla_matches_graph_mode.  The slow tier: the rest.
XLA_MATRIX = [pytest.param(case, policy, id=f"{case_id}-{policy}",
                           marks=() if index < len(POLICIES) and policy == POLICIES[index] else pytest.mark.slow)
              for index, (case, case_id) in enumerate(zip(HEAD_CASES, CASE_IDS)) for policy in POLICIES]


@pytest.mark.parametrize("case, policy", XLA_MATRIX)
def test_xla_training_under_every_policy(case, policy):
    """jit_compile=True (XLA; JAX always compiles) trains with finite losses at every policy."""
    model, losses = _fit_losses(case, policy, jit_compile=True)
    assert np.all(np.isfinite(losses))
    assert keras.backend.standardize_dtype(model.output.dtype) == "float32"
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="JAX always compiles with XLA")
@pytest.mark.parametrize("case", HEAD_CASES, ids=CASE_IDS)
def test_xla_matches_graph_mode(case, rng):
    """Three training-mode steps of the head (its state updates included: counters, moving statistics) give the
    same loss and gradients (to the embeddings and every weight) compiled by XLA as in graph mode.  Training
    under XLA with an optimizer: test_xla_training_under_every_policy."""
    import tensorflow as tf

    if case[2] in RANDOM_IN_TRAINING:  # TensorFlow's random draws differ between XLA and graph mode,
        case = (*case[:3], {**case[3], "std": 0.0}, *case[4:])  # so compare the formula at sigma = 0
    keras.config.set_dtype_policy("float32")
    head = case[2](NUM_CLASSES, **case[3])
    head.build([(None, DIM), (None,)])
    start = [ops.convert_to_numpy(variable) for variable in head.variables]
    embeddings = tf.constant(rng.standard_normal((3, 16, DIM)).astype("float32") * 3)
    labels = tf.constant(rng.integers(0, NUM_CLASSES, (3, 16)).astype("int32"))

    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, head([x, y], training=True),
                                                                          from_logits=True))
        return [loss, *tape.gradient(loss, [x, *head.trainable_variables])]

    steps = {}
    for jit_compile in (False, True):
        for variable, value in zip(head.variables, start):
            variable.assign(value)
        compiled = tf.function(step, jit_compile=jit_compile)
        steps[jit_compile] = [[t.numpy() for t in compiled(embeddings[i], labels[i])] for i in range(3)]
    for graph, xla in zip(steps[False], steps[True]):
        for want, got in zip(graph, xla):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
