"""Parity: cosine similarity of an exported model's embeddings against the Keras model's."""

import numpy as np

from keras_arcface.runtime import FaceEmbedder, l2_normalize


def keras_embeddings(model, faces_uint8, spec=None):
    """The reference: the same KerasEmbedder that evaluation uses (preprocess, embed, normalise)."""
    from keras_arcface.evaluation.models import KerasEmbedder

    return KerasEmbedder(model, spec=spec).embed(faces_uint8)


def exported_embeddings(path, fmt, faces_uint8, spec):
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        return l2_normalize(np.asarray(loaded.serve(spec.prepare(faces_uint8))))
    return FaceEmbedder(path).embed(faces_uint8)


def cosine_parity(reference, exported):
    """(min, mean) cosine between matching rows of two L2-normalised embedding sets."""
    cosines = np.sum(reference * exported, axis=1)
    return float(cosines.min()), float(cosines.mean())
