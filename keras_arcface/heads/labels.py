"""Label checking shared by every head and by the margin loss.

Eager calls raise a clear ``ValueError`` for labels that are negative, too large or not
integral.  Compiled graphs (``tf.function``, XLA, JAX jit) cannot raise on values, so
there an invalid row gets label -1: no class is its target, the head adds no margin to
that row and ``MarginLoss`` gives it zero loss (like PyTorch's ``ignore_index``).
"""

import warnings

import keras
import numpy as np
from keras import backend, ops

from keras_arcface.errors import InputError

INVALID_LABEL = -1


def is_concrete(tensor):
    """True when ``tensor`` holds values this process can read now (eager), False inside a traced /
    compiled graph or for a JAX array spread over several processes."""
    name = backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and hasattr(tensor, "numpy")
    if name == "jax":
        import jax

        return not isinstance(tensor, jax.core.Tracer) and getattr(tensor, "is_fully_addressable", True)
    return True


def _check_values(values, num_classes):
    values = np.asarray(values)
    if values.dtype.kind in "fc":
        bad = ~np.isfinite(values) | (values != np.floor(values))
        if bad.any():
            raise InputError(
                "labels must be integer class ids; got non-integer values "
                f"{values[bad][:5].tolist()} at positions {np.flatnonzero(bad)[:5].tolist()}"
            )
        values = values.astype(np.int64)
    bad = (values < 0) | (values >= num_classes)
    if bad.any():
        raise InputError(
            f"labels must be class ids in [0, {num_classes}); got "
            f"{values[bad][:5].tolist()} at positions {np.flatnonzero(bad)[:5].tolist()}"
        )


def prepare_labels(labels, num_classes):
    """Labels of shape (B,) or (B, 1) -> int32 (B,); invalid rows -> -1 in graphs.

    Raises ``TypeError`` for non-numeric dtypes and ``ValueError`` for bad shapes or, in
    eager mode, for out-of-range, negative or non-integer values.
    """
    labels = ops.convert_to_tensor(labels)
    dtype = backend.standardize_dtype(labels.dtype)
    if not (dtype.startswith("int") or dtype.startswith("uint") or dtype.startswith("float")
            or dtype.startswith("bfloat")):
        raise TypeError(f"labels must be integer class ids, got dtype {dtype}")
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 1:
        raise InputError(f"labels must have shape (batch,) or (batch, 1); got {labels.shape}")
    if is_concrete(labels):
        _check_values(ops.convert_to_numpy(labels), num_classes)
        return ops.cast(labels, "int32")
    if dtype.startswith("float") or dtype.startswith("bfloat"):
        integral = ops.logical_and(ops.isfinite(labels), ops.equal(labels, ops.floor(labels)))
        labels = ops.where(integral, labels, float(INVALID_LABEL))
    labels = ops.cast(labels, "int32")
    in_range = ops.logical_and(labels >= 0, labels < num_classes)
    return ops.where(in_range, labels, INVALID_LABEL)


class IgnoredLabelRows(keras.callbacks.Callback):
    """Warn once per epoch with the number of rows a compiled step ignored for an invalid label.

    Compiled steps cannot raise on label values (see the module docstring), so every margin head
    counts those rows in its ``ignored_label_rows`` variable; this callback resets the counts at
    each epoch start and, at its end, warns with their sum and adds it to the logs.  ``train()``
    adds it; add it to your own ``fit(callbacks=[IgnoredLabelRows()])``.  Under several replicas
    the count read is the first replica's.
    """

    def _counters(self):
        return [layer.ignored_label_rows for layer in self.model._flatten_layers()
                if getattr(layer, "ignored_label_rows", None) is not None]

    def on_epoch_begin(self, epoch, logs=None):
        for counter in self._counters():
            counter.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        ignored = sum(int(ops.convert_to_numpy(counter)) for counter in self._counters())
        if logs is not None:
            logs["ignored_label_rows"] = ignored
        if ignored:
            warnings.warn(f"epoch {epoch + 1}: {ignored} row(s) had a label outside [0, num_classes) or not an "
                          "integer and were ignored (no loss, no gradient); check the labels", stacklevel=2)
