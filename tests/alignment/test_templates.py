"""Each model's crop template: InputSpec records it, and recrop maps crops of one template onto another."""

import json

import numpy as np
import pytest

from keras_arcface.alignment import ARCFACE_TEMPLATE, least_squares_similarity, recrop, sample_faces_for
from keras_arcface.errors import InputError
from keras_arcface.runtime import InputSpec
from keras_arcface.runtime.embedder import DEFAULT_SPEC, INTEL_RETAIL_LANDMARKS, spec_for
from tests.faces import make_face_folder

INTEL = InputSpec(size=(128, 128), layout="NCHW", colour="BGR", mean=0.0, std=1.0, template=INTEL_RETAIL_LANDMARKS)


def test_the_default_template_is_arcfaces_scaled_with_the_crop():
    np.testing.assert_array_equal(DEFAULT_SPEC.landmarks, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(InputSpec(size=(224, 112)).landmarks[0], [38.2946, 51.6963 * 2], rtol=1e-6)
    assert "template" not in DEFAULT_SPEC.to_dict()  # files written before templates read the same


def test_a_template_round_trips_through_plain_data_and_is_checked():
    data = json.loads(json.dumps(INTEL.to_dict()))
    assert InputSpec(**data) == INTEL and len(data["template"]) == 5
    np.testing.assert_allclose(INTEL.landmarks[0], [0.31556875 * 128, 0.46157411 * 128], rtol=1e-6)
    with pytest.raises(InputError, match=r"five \(x, y\) points, got shape \(4, 2\)"):
        InputSpec(template=[(1, 2)] * 4)


def test_intels_files_are_known_by_name(tmp_path):
    for name in ("face-reidentification-retail-0095_fp16.xml", "face-reidentification-retail-0095_fp16-int8.xml"):
        assert spec_for(tmp_path / name) == INTEL


def test_the_least_squares_similarity_is_exact_for_a_similar_template():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -2.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = ARCFACE_TEMPLATE @ rotation.T + shift
    matrix = least_squares_similarity(ARCFACE_TEMPLATE, moved)
    np.testing.assert_allclose(matrix, np.c_[rotation, shift], atol=1e-9)


def test_recrop_puts_a_crops_landmarks_on_the_other_template():
    """Dots drawn at the ArcFace landmarks of a 112 crop land at Intel's landmarks of the 128 crop."""
    crop = np.zeros((1, 112, 112, 3), np.uint8)
    for x, y in np.round(ARCFACE_TEMPLATE).astype(int):
        crop[0, y - 1:y + 2, x - 1:x + 2] = 255
    assert recrop(crop, DEFAULT_SPEC, DEFAULT_SPEC) is crop  # same template and size: the crops themselves
    mapped = recrop(crop, DEFAULT_SPEC, INTEL)
    assert mapped.shape == (1, 128, 128, 3)
    matrix = least_squares_similarity(DEFAULT_SPEC.landmarks, INTEL.landmarks)
    where = np.round(np.c_[np.round(ARCFACE_TEMPLATE), np.ones(5)] @ matrix.T).astype(int)
    for x, y in where:  # each dot's centre is bright, far from the dots is black
        assert mapped[0, y, x].min() > 100
    assert mapped[0, :20].max() == 0
    # the templates differ by more than a scale: the residual is what the similarity cannot absorb
    residual = np.c_[DEFAULT_SPEC.landmarks, np.ones(5)] @ matrix.T - INTEL.landmarks
    assert np.abs(residual).max() < 3.0


def test_faces_for_a_spec_come_as_they_are_or_mapped_from_arcface_crops(tmp_path):
    folder = make_face_folder(tmp_path / "faces", identities=2, per_identity=3, size=112)
    faces = sample_faces_for(folder, 4, INTEL)
    assert faces.shape == (4, 128, 128, 3) and faces.dtype == np.uint8
    assert sample_faces_for(folder, 4, DEFAULT_SPEC).shape == (4, 112, 112, 3)
    small = make_face_folder(tmp_path / "small", identities=2, per_identity=3, size=32)
    assert sample_faces_for(small, 4, InputSpec(size=(32, 32))).shape == (4, 32, 32, 3)
    with pytest.raises(InputError, match="no aligned 112x112 face crops"):
        sample_faces_for(small, 4, INTEL)


def test_a_photo_aligns_onto_each_models_template(rng):
    """The warp puts landmarks on the spec's template at its size (landmarks already there: the crop
    itself), and the aligner crops a photo for the spec it is given."""
    from keras_arcface.alignment import FaceAligner, warp_face
    from tests.faces import demo_face, photo_of

    image = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    np.testing.assert_array_equal(warp_face(image, INTEL.landmarks, size=INTEL.size, template=INTEL.landmarks), image)
    wide = InputSpec(size=(112, 96))
    assert warp_face(image, INTEL.landmarks, size=wide.size, template=wide.landmarks).shape == (112, 96, 3)
    photo = photo_of([demo_face("Grace_Hopper", 1)])
    assert FaceAligner().align(photo).shape == (112, 112, 3)
    assert FaceAligner(spec=INTEL).align(photo).shape == (128, 128, 3)


def test_the_mapping_comparison_script_offers_the_three_mappings():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "compare_crop_mappings.py"
    spec = importlib.util.spec_from_file_location("compare_crop_mappings", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    found = script.mappings(DEFAULT_SPEC, INTEL)
    np.testing.assert_allclose(found["least-squares similarity"],
                               least_squares_similarity(DEFAULT_SPEC.landmarks, INTEL.landmarks))
    np.testing.assert_allclose(found["plain resize"], [[128 / 112, 0, 0], [0, 128 / 112, 0]])
    assert found["LMEDS similarity"].shape == (2, 3)
    assert np.allclose(script.mappings(DEFAULT_SPEC, DEFAULT_SPEC)["least-squares similarity"], [[1, 0, 0], [0, 1, 0]])


def test_an_embedder_takes_arcface_crops_for_a_model_of_another_crop():
    """ArcFace 112x112 crops are the common currency: a 128x128 model's spec maps them onto its template in
    prepare (the same recrop), takes its own size as it is, and names both sizes for any other."""
    spec = InputSpec(size=(128, 128), colour="BGR", mean=0.0, std=1.0, template=INTEL_RETAIL_LANDMARKS)
    faces = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    mapped = recrop(faces, DEFAULT_SPEC, spec)
    np.testing.assert_array_equal(spec.prepare(faces), spec.prepare(mapped))
    np.testing.assert_array_equal(spec.aligned_crop(faces[0]), mapped[0])
    own = mapped[0]
    assert spec.aligned_crop(own) is own and spec.aligned_crop(faces[0][:100]) is None
    with pytest.raises(InputError, match="128x128 crops .*ArcFace 112x112"):
        spec.prepare(np.zeros((1, 96, 96, 3), np.uint8))
