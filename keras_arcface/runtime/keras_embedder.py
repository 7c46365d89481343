"""A Keras embedding model behind the runtime's embedding contract.

Nothing here imports Keras: :class:`KerasEmbedder` calls the model it is given, so the zoo, the
loader and the evaluation share it while the runtime stays importable without Keras.
"""

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.runtime.embedder import InputSpec, flip_averaged, l2_normalize
from keras_arcface.runtime.reference import ModelReference, ReferencedEmbedder


class KerasEmbedder(ReferencedEmbedder):
    """A Keras embedding model behind the embedding contract; ``model`` is the raw Keras model
    (for training or fine-tuning: it wants the spec's preprocessing and returns unnormalised vectors).
    ``reference`` (a :class:`~keras_arcface.runtime.reference.ModelReference`) is given by the zoo's loader;
    without one, ``threshold`` (from a run folder's threshold.json) and ``spec`` make it.
    ``flip=True`` embeds each face with its mirror image (:func:`~keras_arcface.runtime.embedder.flip_averaged`)."""

    def __init__(self, model, threshold=None, spec=None, flip=False, reference=None):
        self.model = model
        self.flip = bool(flip)
        self.path = getattr(model, "name", "keras model")
        if reference is None:
            reference = ModelReference(
                name=self.path, spec=spec or InputSpec(size=tuple(model.input_shape[1:3])), threshold=threshold,
                threshold_source="threshold.json beside the model" if threshold is not None else "",
                source="keras model", path=self.path)
        self.reference = reference.with_spec(spec)

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


class KerasMissingError(InputError, ImportError):
    """Keras, or the backend it would use, is not installed (an :class:`ImportError` too, so code that
    tolerates a missing optional module keeps doing so)."""


def require_keras(what):
    """A :class:`KerasMissingError` saying what to install when ``what`` needs Keras and it is missing."""
    if not keras_available():
        raise KerasMissingError(f"{what} needs Keras with its backend, which is not installed: pip install "
                                "'keras-arcface[tensorflow]' (or 'keras-arcface[jax]' with KERAS_BACKEND=jax), or "
                                "use an .onnx / .tflite model (a zoo name without :keras)")
