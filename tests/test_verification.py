"""FaceVerifier and `keras-arcface verify` on generated photos: the zoo's default model in its runtime
format (no TensorFlow on that path), card thresholds, exit codes, JSON, and messy inputs."""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from keras_arcface.alignment import NoFaceError
from keras_arcface.cli import main
from keras_arcface.data.images import BadImageError, read_image
from keras_arcface.errors import InputError
from keras_arcface.verification import FaceVerifier
from keras_arcface.zoo import default_model, model_card
from tests.faces import demo_face, photo_of, write_image


@pytest.fixture(scope="module")
def verifier():
    return FaceVerifier()


@pytest.fixture
def photos(tmp_path):
    paths = {
        "hopper": photo_of([demo_face("Grace_Hopper", 1)]),
        "hopper_again": photo_of([demo_face("Grace_Hopper", 3)], scale=2.5),
        "collins": photo_of([demo_face("Eileen_Collins", 2)]),
        "both": photo_of([demo_face("Eileen_Collins", 1), demo_face("Grace_Hopper", 1)], size=(400, 800), scale=1.8),
        "blank": np.full((300, 400, 3), 128, np.uint8),
    }
    for name, image in paths.items():
        write_image(tmp_path / f"{name}.jpg", image)
    return {name: str(tmp_path / f"{name}.jpg") for name in paths}


def test_the_default_verifier_uses_the_cards_runtime_artifact_and_threshold(verifier):
    card = model_card(default_model())
    assert verifier.embedder.reference.format == card.runtime_format()
    assert verifier.threshold == card.lfw_metric(card.runtime_format())["threshold_at_far"]["1e-3"]
    assert "LFW" in verifier.threshold_source


def test_same_and_different_people(verifier, photos):
    same = verifier.verify(photos["hopper"], photos["hopper_again"])
    different = verifier.verify(photos["hopper"], photos["collins"])
    assert same.same is True and same.similarity > 0.6
    assert different.same is False and different.similarity < 0.3
    face = same.faces[0]
    assert face.faces_found == 1 and face.score > 0.8
    assert face.aligned.shape == (*verifier.embedder.spec.size, 3)  # the model's own crop (128 for the default)
    x, y, w, h = face.box  # the enlarged crop sits at x=40.., y=128..; the face inside it
    assert 40 <= x < 40 + 224 and 128 <= y < 128 + 224 and 80 < w < 224
    # arrays work like paths, and embed() gives a unit vector
    array_result = verifier.verify(read_image(photos["hopper"]), read_image(photos["hopper_again"]))
    assert array_result.similarity == pytest.approx(same.similarity, abs=1e-6)
    assert np.linalg.norm(verifier.embed(photos["collins"])) == pytest.approx(1.0, abs=1e-5)


def test_several_faces_the_largest_is_used_and_counted(verifier, photos):
    result = verifier.verify(photos["both"], photos["collins"])
    assert result.faces[0].faces_found == 2 and result.same  # Collins is larger... both are 1.8x: first found wins
    center = FaceVerifier(choose="center").find_face(photos["both"])
    assert center.faces_found == 2


def test_thresholds_given_or_at_a_false_accept_rate(photos):
    card = model_card(default_model())
    far = card.thresholds(card.runtime_format())["far"]
    assert set(far) == {"1e-2", "1e-3", "1e-4"} and far["1e-2"] < far["1e-3"] < far["1e-4"]
    strict = FaceVerifier(far=1e-4)
    assert strict.threshold == far["1e-4"] and "FAR 1e-4" in strict.threshold_source
    assert FaceVerifier(threshold=0.99).verify(photos["hopper"], photos["hopper_again"]).same is False
    with pytest.raises(InputError, match="FAR 0.5"):
        FaceVerifier(far=0.5)


def test_cli_verify_exit_codes_json_and_report(photos, capsys):
    assert main(["verify", photos["hopper"], photos["hopper_again"]]) == 0
    out = capsys.readouterr().out
    assert "verdict    same person" in out and "detection score" in out and "face 1 of 1" in out
    assert "threshold  " in out and "LFW" in out
    assert main(["verify", photos["hopper"], photos["collins"], "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["same"] is False and len(report["faces"]) == 2 and report["faces"][0]["faces_found"] == 1
    assert main(["verify", photos["hopper"], photos["hopper_again"], "--far", "1e-3"]) == 0
    assert "FAR 1e-3" in capsys.readouterr().out
    assert main(["verify", photos["both"], photos["hopper"]]) in (0, 1)
    captured = capsys.readouterr()
    assert "face 1 of 2" in captured.out
    assert f"{photos['both']}: 2 faces found; face 1 used: the largest face of good quality (--face-a" in captured.err


@pytest.mark.parametrize("case", ["blank", "missing", "folder", "unreadable"])
def test_cli_verify_errors_name_the_file_in_one_line(photos, tmp_path, capsys, case):
    bad = {"blank": photos["blank"], "missing": str(tmp_path / "nope.jpg"), "folder": str(tmp_path),
           "unreadable": str(tmp_path / "broken.jpg")}[case]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["verify", photos["hopper"], bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and bad in err and "\n" not in err


def test_an_aligned_crop_without_a_detectable_face_is_used_as_is(verifier):
    """A crop of the model's size as it is; an ArcFace 112x112 crop mapped onto the model's template."""
    size = verifier.embedder.spec.size
    crop = np.full((*size, 3), 90, np.uint8)
    face = verifier.find_face(crop, "crop")
    assert face.box is None and face.faces_found == 0 and np.array_equal(face.aligned, crop)
    arcface = verifier.find_face(np.full((112, 112, 3), 90, np.uint8), "arcface crop")
    assert arcface.box is None and arcface.aligned.shape == (*size, 3)
    with pytest.raises(NoFaceError, match="photo.png: no face found"):
        verifier.find_face(np.full((200, 300, 3), 90, np.uint8), "photo.png")


def test_a_huge_photo_is_shrunk_for_detection(verifier, tmp_path):
    huge = photo_of([demo_face("Grace_Hopper", 1)], size=(4000, 6000), scale=25)
    face = verifier.find_face(huge, "huge")
    assert face.faces_found == 1 and face.box[2] > 1500  # the box is in the full photo's pixels
    assert verifier.embedder.embed(face.aligned[None]) @ verifier.embed(demo_face("Grace_Hopper", 1)) > 0.8


# --- messy photos: each a small generated file ---------------------------------------------------------

def _two_colour():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = (255, 0, 0)
    image[:, 30:] = (0, 0, 255)
    return image


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(_two_colour())
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    loaded = read_image(tmp_path / "rotated.jpg")
    assert loaded.shape == (60, 40, 3)
    assert loaded[2, 2, 0] > 200 and loaded[-3, -3, 2] > 200  # red on top, blue at the bottom


def test_cmyk_grey_16_bit_and_alpha_load_as_rgb(tmp_path):
    Image.fromarray(_two_colour()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert cmyk.shape == (40, 60, 3) and cmyk[5, 5, 0] > 200 and cmyk[5, 5, 2] < 50
    Image.fromarray(_two_colour()[:, :, 0]).save(tmp_path / "grey.jpg")
    grey = read_image(tmp_path / "grey.jpg")
    assert grey.shape == (40, 60, 3) and (grey[..., 0] == grey[..., 2]).all()
    Image.fromarray(np.full((40, 60), 40000, np.uint16)).save(tmp_path / "deep.png")
    deep = read_image(tmp_path / "deep.png")
    assert deep.dtype == np.uint8 and deep.shape == (40, 60, 3) and abs(int(deep[0, 0, 0]) - 156) <= 1
    rgba = np.dstack([_two_colour(), np.r_[np.zeros((20, 60)), np.full((20, 60), 255)].astype(np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "cutout.png")
    cutout = read_image(tmp_path / "cutout.png")
    assert (cutout[:20] == 255).all()  # transparent: composited onto white, not black
    assert tuple(cutout[-1, 0]) == (255, 0, 0)


def test_bad_files_are_one_clear_error(tmp_path):
    with pytest.raises(BadImageError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(BadImageError, match="no such file"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(BadImageError, match="text.jpg: not a decodable image"):
        read_image(tmp_path / "text.jpg")


def test_model_names_resolve_or_say_what_exists():
    from keras_arcface.embedding import load_embedder
    from keras_arcface.zoo import CardError

    with pytest.raises(InputError, match="neither a file, a folder nor a zoo model name.*sface"):
        load_embedder("no-such-model")
    with pytest.raises(CardError, match="has no 'nope' artifact"):
        load_embedder("sface:nope")
    onnx = load_embedder("sface:onnx")
    assert onnx.reference.format == "onnx"
    assert onnx.threshold == model_card("sface").thresholds("onnx")["threshold"]


def test_version_flag(capsys):
    from keras_arcface import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"keras-arcface {__version__}"


@pytest.mark.skipif(__import__("keras").backend.backend() != "tensorflow", reason="the TensorFlow start-up lines")
def test_a_keras_model_verifies_without_tensorflow_start_up_lines(photos):
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "keras_arcface.cli", "verify", photos["hopper"],
                           photos["hopper_again"], "--model", "sface:keras"], capture_output=True, text=True,
                          timeout=300,
                          env={**env, "PYTHONPATH": str(root)})
    assert done.returncode == 0 and "verdict    same person" in done.stdout, done.stderr[-2000:]
    assert done.stderr.strip() == "", done.stderr[-2000:]  # no oneDNN / CUDA / cuInit lines


def test_opencv_arrays_are_said_to_be_bgr_and_then_embed_as_the_photo_by_path(verifier, photos):
    import cv2

    by_path = verifier.embed(photos["hopper"])
    bgr = cv2.imread(photos["hopper"])
    assert float(verifier.embed(bgr, colour_order="BGR") @ by_path) > 0.9999
    assert float(verifier.embed(bgr) @ by_path) < 0.999, "the default rule (RGB) must differ for a BGR array"
    assert float(FaceVerifier(colour_order="BGR").embed(bgr) @ by_path) > 0.9999
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    assert float(verifier.embed(bgra, colour_order="BGR") @ by_path) > 0.9999
    with pytest.raises(InputError, match="colour_order must be one of"):
        FaceVerifier(colour_order="bgr")


def test_compare_embeds_each_photo_once_and_agrees_with_verify(verifier, photos):
    names = ["hopper", "hopper_again", "collins"]
    table = verifier.compare([photos[name] for name in names])
    assert table.similarities.shape == (3, 3) and np.allclose(table.similarities, table.similarities.T)
    assert np.allclose(np.diag(table.similarities), 1.0, atol=1e-5)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        pair = verifier.verify(photos[names[i]], photos[names[j]])
        assert table.similarities[i, j] == pytest.approx(pair.similarity, abs=1e-5)
        assert table.same[i, j] == pair.same
    assert table.same[0, 1] and not table.same[0, 2] and table.model == str(verifier.embedder.reference)


def test_embed_detects_photos_itself_and_takes_aligned_crops_as_they_are(verifier, photos, tmp_path, capsys):
    import shutil

    from keras_arcface.demo import DEMO_DATA

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(photos["hopper"], folder / "photo.jpg")  # a raw photo: detected and aligned, as verify does
    crop = DEMO_DATA / "faces" / "Eileen_Collins" / "Eileen_Collins_0001.jpg"
    shutil.copy(crop, folder / "crop.jpg")  # an aligned 112x112 crop: as it is
    assert main(["embed", str(folder), "-o", str(tmp_path / "e.npz")]) == 0
    with np.load(tmp_path / "e.npz") as data:
        embeddings = dict(zip([pathlib.Path(f).name for f in data["files"]], data["embeddings"]))
    assert float(embeddings["photo.jpg"] @ verifier.embed(photos["hopper"])) > 0.9999
    expected = verifier.embedder.embed(verifier.embedder.spec.aligned_crop(read_image(crop))[None])[0]
    assert float(embeddings["crop.jpg"] @ expected) > 0.9999
