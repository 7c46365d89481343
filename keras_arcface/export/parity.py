"""Parity: cosine similarity of an exported model's embeddings against the Keras model's."""

import numpy as np

from keras_arcface.formats import FORMATS
from keras_arcface.runtime import FaceEmbedder, KerasEmbedder, l2_normalize


def keras_embeddings(model, faces_uint8, spec=None):
    """The reference: the same KerasEmbedder that evaluation uses (preprocess, embed, normalise)."""
    return KerasEmbedder(model, spec=spec).embed(faces_uint8)


def exported_embeddings(path, fmt, faces_uint8, spec):
    """The exported file's embeddings: through the runtime exactly as a device reads it (file and
    sidecar) where the runtime reads the format, else through the format's own reader."""
    table_entry = FORMATS[fmt]
    if table_entry.runtime:
        return FaceEmbedder(path).embed(faces_uint8)
    run, _ = table_entry.open(path)
    return l2_normalize(run(spec.prepare(faces_uint8)))


def cosine_parity(reference, exported):
    """(min, mean) cosine between matching rows of two L2-normalised embedding sets."""
    cosines = np.sum(reference * exported, axis=1)
    return float(cosines.min()), float(cosines.mean())
