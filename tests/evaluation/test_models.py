"""Any model as an embedder: Keras objects, .keras files, thresholds, unsupported paths."""

import json

import keras
import numpy as np
import pytest

from keras_arcface.backbones import MobileFaceNet
from keras_arcface.embedding import load_embedder


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="saves with the TensorFlow backend")
def test_keras_file_and_object_give_the_same_normalised_embeddings(tmp_path):
    model = MobileFaceNet(embedding_size=16, input_shape=(32, 32, 3))
    model.save(tmp_path / "m.keras")
    (tmp_path / "threshold.json").write_text(json.dumps({"threshold": 0.42}))
    faces = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    from_file = load_embedder(tmp_path / "m.keras")
    assert from_file.threshold == 0.42 and from_file.spec.size == (32, 32)
    a, b = from_file.embed(faces), load_embedder(model).embed(faces)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot"):
        load_embedder(tmp_path / "model.pt")
