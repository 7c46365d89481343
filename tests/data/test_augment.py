"""Training augmentation: identity when off, seeded, each jitter within its range, batches."""

import numpy as np
import pytest

from keras_arcface.data import AUGMENTATIONS, FaceAugmentation, FaceBatches, FaceFolder
from keras_arcface.data.augment import augmentation
from keras_arcface.training import TrainConfig
from tests.faces import make_face_folder


def _faces(count=6, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_off_is_the_identity_and_presets_are_seeded():
    images = _faces()
    np.testing.assert_array_equal(AUGMENTATIONS["none"](images, np.random.default_rng(0)), images)
    for name in ("light", "medium"):
        first = AUGMENTATIONS[name](images, np.random.default_rng(3))
        again = AUGMENTATIONS[name](images, np.random.default_rng(3))
        other = AUGMENTATIONS[name](images, np.random.default_rng(4))
        assert first.dtype == np.uint8 and first.shape == images.shape
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other) and not np.array_equal(first, images)


def test_brightness_shifts_a_flat_image_by_at_most_its_range():
    flat = np.full((400, 8, 8, 3), 100, np.uint8)
    out = FaceAugmentation(brightness=0.2)(flat, np.random.default_rng(0)).astype(int)
    per_image = out.reshape(400, -1)
    assert np.all(per_image == per_image[:, :1])  # one offset per image
    offsets = per_image[:, 0] - 100
    assert np.abs(offsets).max() <= round(0.2 * 255) and offsets.min() < -40 and offsets.max() > 40


def test_contrast_and_saturation_keep_a_flat_grey_image():
    flat = np.full((50, 8, 8, 3), 90, np.uint8)
    out = FaceAugmentation(contrast=0.5, saturation=0.5)(flat, np.random.default_rng(0))
    np.testing.assert_array_equal(out, flat)


def test_contrast_scales_about_the_mean():
    ramp = np.tile(np.linspace(60, 180, 16).astype(np.uint8)[None, :, None], (16, 1, 3))[None]
    images = np.repeat(ramp, 300, axis=0)
    out = FaceAugmentation(contrast=0.4)(images, np.random.default_rng(1)).astype(float)
    spread = out.std(axis=(1, 2, 3)) / images[0].astype(float).std()
    assert spread.min() >= 0.6 - 0.02 and spread.max() <= 1.4 + 0.02
    assert spread.min() < 0.7 and spread.max() > 1.3
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), images[0].mean(), atol=0.6)


def test_grey_makes_channels_equal():
    out = FaceAugmentation(grey=0.999)(_faces(20), np.random.default_rng(0))
    assert np.mean([np.ptp(face, axis=-1).max() <= 1 for face in out]) > 0.9


def test_shift_moves_a_dot_by_at_most_the_range():
    image = np.zeros((1, 33, 33, 3), np.uint8)
    image[0, 16, 16] = 255
    limit = 0.1 * 33
    moves = []
    for seed in range(40):
        out = FaceAugmentation(shift=0.1)(image, np.random.default_rng(seed))[0, :, :, 0].astype(float)
        row, col = np.unravel_index(out.argmax(), out.shape)
        moves.append((row - 16, col - 16))
    moves = np.array(moves)
    assert np.abs(moves).max() <= np.ceil(limit) and (np.abs(moves) >= 2).any()


def test_rotation_and_scale_keep_the_centre():
    image = _faces(1, size=33)
    image[0, 15:18, 15:18] = 255
    out = FaceAugmentation(rotate=15.0, scale=0.1)(np.repeat(image, 10, 0), np.random.default_rng(0))
    assert np.all(out[:, 16, 16] >= 250)
    assert not np.array_equal(out[0], image[0])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="shift"):
        FaceAugmentation(shift=-0.1)
    with pytest.raises(ValueError, match="grey"):
        FaceAugmentation(grey=1.0)
    with pytest.raises(ValueError, match="choose one of"):
        augmentation("heavy")
    with pytest.raises(ValueError, match="choose one of"):
        TrainConfig(data_dirs=["x"], output_dir="y", augment="heavy")
    with pytest.raises(ValueError, match="uint8"):
        AUGMENTATIONS["light"](_faces().astype(np.float32), np.random.default_rng(0))


def test_batches_augment_after_the_flip_and_stay_deterministic(tmp_path):
    folder = FaceFolder.scan(make_face_folder(tmp_path / "f", identities=3, per_identity=6, size=32),
                             image_size=(32, 32))
    plain = FaceBatches(folder, batch_size=6, seed=5)
    jittered = FaceBatches(folder, batch_size=6, seed=5, augment=AUGMENTATIONS["medium"])
    again = FaceBatches(folder, batch_size=6, seed=5, augment=AUGMENTATIONS["medium"])
    (x_plain, y_plain), _ = plain[1]
    (x_aug, y_aug), _ = jittered[1]
    np.testing.assert_array_equal(x_aug, again[1][0][0])
    np.testing.assert_array_equal(y_plain, y_aug)  # same order and labels
    assert not np.array_equal(x_plain, x_aug)
    # The jitter is drawn from its own stream: the flips are those of the plain batches.
    unjittered = FaceBatches(folder, batch_size=6, seed=5, augment=AUGMENTATIONS["none"])
    np.testing.assert_array_equal(unjittered[1][0][0], x_plain)
    jittered.on_epoch_end(), again.on_epoch_end()
    np.testing.assert_array_equal(jittered[0][0][0], again[0][0][0])

