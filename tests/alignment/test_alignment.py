"""Alignment: the warp, the detector, and the shared aligned crops reproduced."""


import numpy as np
import pytest

from keras_arcface.alignment import ARCFACE_TEMPLATE, FaceAligner, NoFaceError, warp_face
from keras_arcface.data import read_image
from tests.conftest import SHARED_DATA

DETECTOR = SHARED_DATA.parent / "models" / "face_detection_yunet_2023mar_int8bq.onnx"
needs_detector = pytest.mark.skipif(not DETECTOR.is_file(), reason="needs ../shared/models (YuNet)")


def test_landmarks_on_the_template_warp_to_the_identity(rng):
    image = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    np.testing.assert_array_equal(warp_face(image, ARCFACE_TEMPLATE), image)
    doubled = np.kron(image, np.ones((2, 2, 1), np.uint8))  # the same face at twice the size
    aligned = warp_face(doubled, ARCFACE_TEMPLATE * 2 + 0.5)
    assert np.abs(aligned.astype(int) - image.astype(int)).mean() < 25


def test_missing_detector_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_ARCFACE_DETECTOR", raising=False)
    with pytest.raises(FileNotFoundError, match="YuNet"):
        FaceAligner(tmp_path / "nope.onnx")


@needs_detector
def test_no_face_tiny_image_and_bad_arrays():
    aligner = FaceAligner(DETECTOR)
    with pytest.raises(NoFaceError, match="no face"):
        aligner.align(np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(NoFaceError, match="too small"):
        aligner.align(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        aligner.align(np.zeros((64, 64, 3), np.float32))


@needs_detector
@pytest.mark.skipif(not (SHARED_DATA / "lfw" / "raw_sample").is_dir(), reason="needs ../shared/data/lfw")
def test_raw_lfw_photos_align_like_the_shared_crops():
    """197 deep-funneled photos: mean |difference| per image < 3 grey levels (JPEG q95 of the
    shared crops accounts for about 1), with the LFW convention (face nearest the centre)."""
    aligner = FaceAligner(DETECTOR, choose="center")
    differences = []
    for path in sorted((SHARED_DATA / "lfw" / "raw_sample").glob("*/*.jpg")):
        reference = read_image(SHARED_DATA / "lfw" / "aligned" / path.parent.name / path.name)
        aligned = aligner.align(read_image(path))
        differences.append(np.abs(aligned.astype(int) - reference.astype(int)).mean())
    assert len(differences) == 197
    assert max(differences) < 3.0 and np.mean(differences) < 1.5
    grey = read_image(path).mean(axis=2).astype(np.uint8)
    assert aligner.align(grey).shape == (112, 112, 3)  # grey photos are accepted
