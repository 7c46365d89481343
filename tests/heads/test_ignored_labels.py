"""Compiled training with invalid labels: the rows are ignored (no loss), counted, and
IgnoredLabelRows warns once per epoch with the count."""

import warnings

import keras
import numpy as np
import pytest

from keras_arcface.heads import ArcFaceLayer, IgnoredLabelRows


@pytest.mark.backend_neutral
def test_invalid_label_rows_are_counted_and_warned_once_per_epoch(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 4, size=32)
    y[[3, 17, 30]] = [4, 9, -2]  # three rows outside [0, 4): one per batch of 8 at most
    head = ArcFaceLayer(4)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), head])
    model.compile(optimizer="sgd", loss=head.margin_loss())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[IgnoredLabelRows()])
    messages = [str(w.message) for w in caught if "were ignored" in str(w.message)]
    assert messages == [f"epoch {e}: 3 row(s) had a label outside [0, num_classes) or not an integer and were "
                        "ignored (no loss, no gradient); check the labels" for e in (1, 2)]
    assert history.history["ignored_label_rows"] == [3, 3]
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.backend_neutral
def test_valid_labels_give_no_warning_and_the_counter_is_not_saved(tmp_path):
    rng = np.random.default_rng(1)
    head = ArcFaceLayer(4)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), head])
    model.compile(optimizer="sgd", loss=head.margin_loss())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(rng.normal(size=(16, 6)).astype("float32"), rng.integers(0, 4, 16), batch_size=8, verbose=0,
                  callbacks=[IgnoredLabelRows()])
    assert not [w for w in caught if "were ignored" in str(w.message)]
    model.save_weights(tmp_path / "m.weights.h5")
    import h5py

    with h5py.File(tmp_path / "m.weights.h5") as weights:
        stored = []
        weights.visit(stored.append)
    head_entries = [name for name in stored if "arc_face_layer" in name and name.count("/") >= 3]
    assert len(head_entries) == 1, head_entries  # the kernel only, as in files written before the counter
