"""A Keras embedding model behind the runtime's embedding contract.

Nothing here imports Keras: :class:`KerasEmbedder` calls the model it is given, so the zoo, the
loader and the evaluation share it while the runtime stays importable without Keras.
"""

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.runtime.embedder import InputSpec, flip_averaged, l2_normalize


class KerasEmbedder:
    """A Keras embedding model behind the embedding contract; ``model`` is the raw Keras model
    (for training or fine-tuning: it wants the spec's preprocessing and returns unnormalised vectors).
    ``flip=True`` embeds each face with its mirror image (:func:`~keras_arcface.runtime.embedder.flip_averaged`)."""

    def __init__(self, model, threshold=None, spec=None, flip=False):
        self.model = model
        self.flip = bool(flip)
        self.spec = spec or InputSpec(size=tuple(model.input_shape[1:3]))
        self.threshold = threshold
        self.threshold_source = "threshold.json beside the model" if threshold is not None else ""
        self.far_thresholds, self.far_source = {}, ""
        self.path = getattr(model, "name", "keras model")

    def embed(self, faces_rgb_uint8, batch_size=64):
        if self.flip:
            return flip_averaged(self._embed_as_is, faces_rgb_uint8, batch_size=batch_size)
        return self._embed_as_is(faces_rgb_uint8, batch_size)

    def _embed_as_is(self, faces_rgb_uint8, batch_size=64):
        x = self.spec.prepare(faces_rgb_uint8)
        outputs = [np.asarray(self.model.predict_on_batch(x[i:i + batch_size]))
                   for i in range(0, len(x), batch_size)]
        return l2_normalize(np.concatenate(outputs))


def keras_available():
    """Keras and the backend it would use (``$KERAS_BACKEND``, default TensorFlow) are installed,
    judged without importing either."""
    import importlib.util
    import os

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return all(importlib.util.find_spec(module) is not None for module in ("keras", backend))


def require_keras(what):
    """An :class:`InputError` saying what to install when ``what`` needs Keras and it is missing."""
    if not keras_available():
        raise InputError(f"{what} is a Keras model, and Keras with its backend is not installed: pip install "
                         "'keras-arcface[tensorflow]', or use an .onnx / .tflite model (e.g. a zoo name without "
                         ":keras)")
