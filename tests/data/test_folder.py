"""The face folder reader: checks, bad data, label maps and deterministic batches."""

import json

import numpy as np
import pytest

from keras_arcface.data import FaceBatches, FaceFolder, decode_image, preprocess
from tests.faces import make_face_folder, write_image


def test_scan_reads_identities_sorted_with_labels(tmp_path):
    root = make_face_folder(tmp_path / "faces", identities=3, per_identity=4, size=32)
    folder = FaceFolder.scan(root, image_size=(32, 32))
    assert folder.class_names == ["id_0", "id_1", "id_2"]
    assert folder.images.shape == (12, 32, 32, 3) and folder.images.dtype == np.uint8
    assert sorted(np.bincount(folder.labels)) == [4, 4, 4]
    assert folder.skipped == []
    folder.save_label_map(tmp_path / "labels.json")
    assert json.loads((tmp_path / "labels.json").read_text()) == {"id_0": 0, "id_1": 1, "id_2": 2}


def test_bad_data_is_skipped_counted_and_named(tmp_path):
    root = make_face_folder(tmp_path / "faces", identities=2, per_identity=3, size=32)
    (root / "id_0" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no jpeg")
    (root / "id_0" / "empty.png").write_bytes(b"")
    (root / "id_1" / "notes.txt").write_text("not an image")
    write_image(root / "id_1" / "big.png", np.zeros((40, 40, 3), np.uint8))
    (root / "id_empty").mkdir()
    (root / "id_bad_only").mkdir()
    (root / "id_bad_only" / "x.jpg").write_bytes(b"garbage")
    (root / "stray.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=r"skipped 8 item\(s\)") as caught:
        folder = FaceFolder.scan(root, image_size=(32, 32))
    message = str(caught[0].message)
    for name in ("corrupt.jpg", "empty.png", "notes.txt", "big.png", "id_empty", "stray.jpg", "id_bad_only"):
        assert name in message
    assert "size 40x40, expected 32x32" in message and "not a decodable image" in message
    assert folder.class_names == ["id_0", "id_1"] and len(folder.labels) == 6
    reasons = dict(folder.skipped)
    assert reasons[str(root / "id_bad_only")] == "no usable image left in this identity folder"


def test_nothing_usable_is_a_clear_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"nope")
    with pytest.raises(ValueError, match="no usable face images"):
        FaceFolder.scan(tmp_path, warn=False)
    with pytest.raises(ValueError, match="does not exist"):
        FaceFolder.scan(tmp_path / "missing")


def test_grey_rgba_and_16_bit_images_become_rgb_uint8(tmp_path):
    import cv2

    grey = np.full((8, 8), 100, np.uint8)
    rgba = np.dstack([np.full((8, 8), c, np.uint8) for c in (10, 20, 30, 255)])  # B, G, R, A
    deep = np.full((8, 8, 3), 65535, np.uint16)
    for image, want in ((grey, [100, 100, 100]), (rgba, [30, 20, 10]), (deep, [255, 255, 255])):
        ok, encoded = cv2.imencode(".png", image)
        decoded = decode_image(encoded.tobytes())
        assert decoded.shape == (8, 8, 3) and decoded.dtype == np.uint8
        assert decoded[0, 0].tolist() == want


def test_batches_are_deterministic_shuffled_and_flipped(tmp_path):
    folder = FaceFolder.scan(make_face_folder(tmp_path / "f", identities=3, per_identity=6, size=32),
                             image_size=(32, 32))
    first = FaceBatches(folder, batch_size=4, seed=7)
    again = FaceBatches(folder, batch_size=4, seed=7)
    assert len(first) == 4  # 18 images, incomplete last batch dropped
    (x, y), labels = first[0]
    (x2, y2), _ = again[0]
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32 and -1.0 <= x.min() and x.max() <= 1.0
    unflipped = FaceBatches(folder, batch_size=18, seed=7, flip=False, shuffle=False)[0][0][0]
    flipped = FaceBatches(folder, batch_size=18, seed=7, flip=True, shuffle=False)[0][0][0]
    same = [np.array_equal(a, b) for a, b in zip(unflipped, flipped)]
    mirrored = [np.array_equal(a[:, ::-1], b) for a, b in zip(unflipped, flipped)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(mirrored) and any(same)
    order_epoch0 = first._order.copy()
    first.on_epoch_end()
    assert not np.array_equal(order_epoch0, first._order)
    np.testing.assert_allclose(preprocess(np.array([0, 255], np.uint8)), [-127.5 / 128, 127.5 / 128])


def test_max_batches_caps_an_epoch_of_the_permutation(tmp_path):
    folder = FaceFolder.scan(make_face_folder(tmp_path / "f", identities=3, per_identity=6, size=32),
                             image_size=(32, 32))
    capped = FaceBatches(folder, batch_size=4, seed=2, max_batches=2)
    full = FaceBatches(folder, batch_size=4, seed=2)
    assert len(capped) == 2 and len(full) == 4
    np.testing.assert_array_equal(capped[1][0][0], full[1][0][0])
    assert len(FaceBatches(folder, batch_size=4, max_batches=10)) == 4


def test_worker_shards_make_up_each_batch_flips_included(tmp_path):
    """Multi-worker input: shard i of n holds rows [i b/n, (i+1) b/n) of the one-process batch."""
    folder = FaceFolder.scan(make_face_folder(tmp_path / "f", identities=3, per_identity=6, size=32),
                             image_size=(32, 32))
    whole = FaceBatches(folder, batch_size=6, seed=3)
    shards = [FaceBatches(folder, batch_size=6, seed=3, shard=(index, 3)) for index in range(3)]
    for epoch in (0, 4):
        for batches in (whole, *shards):
            batches.set_epoch(epoch)
        for index in range(len(whole)):
            (x, y), labels = whole[index]
            parts = [shard[index] for shard in shards]
            np.testing.assert_array_equal(np.concatenate([part[0][0] for part in parts]), x)
            np.testing.assert_array_equal(np.concatenate([part[1] for part in parts]), labels)
    assert [len(shard) for shard in shards] == [len(whole)] * 3
    for bad in ((3, 3), (-1, 3), (0, 4)):  # index outside [0, count), count not dividing the batch of 6
        with pytest.raises(ValueError, match="shard"):
            FaceBatches(folder, batch_size=6, shard=bad)
