"""Synthetic people drawn around real faces: the embeddings the clustering and gallery benchmarks grow to scale."""

import numpy as np

from keras_arcface.evaluation.face_sets import synthetic_faces


def test_synthetic_people_keep_the_real_faces_and_look_like_people():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 64))
    real = (real / np.linalg.norm(real, axis=1, keepdims=True)).astype(np.float32)
    faces = synthetic_faces(real, 3000, seed=1)
    assert faces.shape == (3000, 64) and faces.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(faces, axis=1), 1, atol=1e-5)
    assert np.array_equal(faces[:200], real)
    # a synthetic person's photos lie about as close to each other as photos of one real person (cosine ~0.5-0.8),
    # and far from everyone else (near 0 in 64 dimensions)
    new = faces[200:]
    neighbours = np.sort(new @ new.T, axis=1)[:, -2]  # each photo's nearest other photo
    strangers = (new[:500] @ new[-500:].T).ravel()
    assert 0.45 < np.median(neighbours) < 0.9 and abs(np.median(strangers)) < 0.1
    assert np.array_equal(synthetic_faces(real, 3000, seed=1), faces)  # seeded
