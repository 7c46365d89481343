"""The head registry: every registered head is under test, and names kept after a rename still load."""

import pathlib

import keras
import numpy as np
from keras import ops

import keras_arcface
from keras_arcface.heads import HEADS, PartialFCLayer, SoftmaxLayer
from keras_arcface.registry import SERIALIZATION_PACKAGE
from tests.heads.cases import HEAD_CASES

DATA = pathlib.Path(__file__).parent / "data"


def test_every_registered_head_has_a_float64_reference_case():
    """The reference, precision, XLA and round-trip tests run over HEAD_CASES: a head registered without a
    case there would escape them all."""
    covered = {case[2] for case in HEAD_CASES}
    missing = sorted(name for name, cls in HEADS.items() if cls not in covered)
    assert not missing, f"registered heads without a case in tests/heads/cases.py: {missing}"


def test_public_names_and_serialization_come_from_the_registry():
    for name, cls in HEADS.items():
        assert cls.__name__.endswith("Layer"), f"{name}: every head's class name ends in Layer"
        assert getattr(keras_arcface, cls.__name__) is cls and cls.__name__ in keras_arcface.__all__
        assert keras.saving.get_registered_object(f"{SERIALIZATION_PACKAGE}>{cls.__name__}") is cls
    assert issubclass(keras_arcface.SoftmaxHead, SoftmaxLayer)
    assert issubclass(keras_arcface.PartialFCHead, PartialFCLayer)


def test_a_keras_file_saved_before_the_rename_loads_and_gives_the_same_logits():
    want = np.load(DATA / "heads_saved_before_rename.npz")
    model = keras.models.load_model(DATA / "heads_saved_before_rename.keras")
    softmax_layer, partial_fc_layer = model.layers[2:]
    assert isinstance(softmax_layer, SoftmaxLayer) and isinstance(partial_fc_layer, PartialFCLayer)
    softmax, partial_fc = model([want["x"], want["y"]])
    np.testing.assert_allclose(ops.convert_to_numpy(softmax), want["softmax"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(partial_fc), want["partial_fc"], rtol=1e-6, atol=1e-6)
