"""Faces, plural: every face of a photo listed with its quality, the default choice of one, picking faces
(--face-a / --face-b / --face), --any-face, identify for every face, --min-quality, turned photos, and the
default operating point; on generated photos of the bundled demo faces (no ../shared, no TensorFlow)."""

import json

import cv2
import numpy as np
import pytest

from keras_arcface.alignment.quality import FRONTAL_NOSE_HEIGHT, face_quality, inside_fraction, pose_of
from keras_arcface.cli import main
from keras_arcface.errors import InputError
from keras_arcface.runtime.embedder import DEFAULT_SPEC
from keras_arcface.verification import FaceVerifier, LowQualityError
from keras_arcface.zoo import default_model, model_card
from tests.faces import demo_face, photo_of, write_image


@pytest.fixture(scope="module")
def verifier():
    return FaceVerifier()


def _cut_group():
    """Collins whole on the left, Hopper larger and cut in half by the right border."""
    canvas = photo_of([demo_face("Eileen_Collins", 1)], size=(480, 640), scale=1.8)
    big = cv2.resize(demo_face("Grace_Hopper", 1), None, fx=3.0, fy=3.0, interpolation=cv2.INTER_CUBIC)
    canvas[60:60 + big.shape[0], 640 - big.shape[1] // 2:] = big[:, :big.shape[1] // 2]
    return canvas


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    upright = photo_of([demo_face("Grace_Hopper", 1)])
    images = {
        "hopper": upright,
        "hopper_again": photo_of([demo_face("Grace_Hopper", 3)], scale=2.5),
        "collins": photo_of([demo_face("Eileen_Collins", 2)]),
        "both": photo_of([demo_face("Eileen_Collins", 1), demo_face("Grace_Hopper", 1)], size=(400, 800), scale=1.8),
        "cut_group": _cut_group(),
        "blurred": cv2.GaussianBlur(upright, (0, 0), 4),
        "turned": np.ascontiguousarray(np.rot90(upright)),
    }
    for name, image in images.items():
        write_image(folder / f"{name}.jpg", image)
    return {name: str(folder / f"{name}.jpg") for name in images}


def test_every_face_is_listed_left_to_right_with_its_quality(verifier, photos):
    faces = verifier.find_faces(photos["both"])
    assert [face.number for face in faces] == [1, 2] and all(face.faces_found == 2 for face in faces)
    assert faces[0].box[0] < faces[1].box[0]
    assert all(face.quality.score > 0.8 and face.quality.reasons == [] for face in faces)
    assert sum(bool(face.chosen_by) for face in faces) == 1  # the default choice is said on exactly one
    collins, hopper = (verifier.embed(photos["collins"]), verifier.embed(photos["hopper"]))
    assert verifier.embed(photos["both"], face=1) @ collins > 0.6
    assert verifier.embed(photos["both"], face=2) @ hopper > 0.6
    with pytest.raises(InputError, match="no face 3: it shows 2 faces"):
        verifier.find_face(photos["both"], face=3)


def test_a_face_cut_by_the_border_is_not_chosen_though_larger(verifier, photos):
    faces = verifier.find_faces(photos["cut_group"])
    cut = max(faces, key=lambda face: face.box[2] * face.box[3])
    assert len(faces) == 2 and cut.quality.score < 0.1
    assert any("cut by the photo's border" in reason for reason in cut.quality.reasons)
    chosen = verifier.find_face(photos["cut_group"])
    assert chosen is not cut and chosen.number != cut.number and "good quality" in chosen.chosen_by
    assert chosen.others[0].number == cut.number
    assert verifier.embed(photos["cut_group"]) @ verifier.embed(photos["collins"]) > 0.6
    assert FaceVerifier(choose="largest").find_face(photos["cut_group"]).number == cut.number


def test_verify_picks_faces_by_number_or_the_best_pair(verifier, photos, capsys):
    assert verifier.verify(photos["both"], photos["hopper"], face_a=2).same
    assert not verifier.verify(photos["both"], photos["hopper"], face_a=1).same
    best = verifier.verify(photos["both"], photos["hopper_again"], any_face=True)
    assert best.same and best.faces[0].number == 2 and "best-matching pair of 2 x 1" in best.faces[0].chosen_by
    assert main(["verify", photos["both"], photos["hopper"], "--face-a", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["faces"][0]["face"] == 2 and report["faces"][0]["chosen_by"] == "face 2 asked for"
    assert [face["face"] for face in report["faces"][0]["faces"]] == [1, 2]
    assert report["faces"][0]["quality"]["score"] > 0.8
    assert main(["verify", photos["both"], photos["hopper"], "--any-face"]) == 0
    assert "face 2 of 2" in capsys.readouterr().out
    for flag in ("--face-a", "--face-b"):
        with pytest.raises(SystemExit):
            main(["verify", photos["both"], photos["hopper"], flag, "0"])
        assert "must be an integer >= 1" in capsys.readouterr().err


def test_min_quality_refuses_a_face_with_its_reasons(photos, capsys):
    strict = FaceVerifier(min_quality=0.5)
    with pytest.raises(LowQualityError, match="below the minimum 0.5 .*blurred"):
        strict.verify(photos["blurred"], photos["hopper"])
    assert strict.verify(photos["hopper"], photos["hopper_again"]).same
    assert main(["verify", photos["blurred"], photos["hopper"], "--min-quality", "0.5"]) == 2
    assert "blurred or low-resolution face" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", photos["blurred"], photos["hopper"], "--min-quality", "1.5"])
    assert "must be a quality score in [0, 1]" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"min_quality must be a quality score in \[0, 1\]"):
        FaceVerifier(min_quality=2)


def test_a_turned_photo_is_turned_upright_and_said(verifier, photos, capsys):
    face = verifier.find_face(photos["turned"])
    assert face.rotation == 270  # the photo is the upright one turned 90 degrees counter-clockwise
    assert verifier.embed(photos["turned"]) @ verifier.embed(photos["hopper"]) > 0.95
    height, width = cv2.imread(photos["turned"]).shape[:2]
    x, y, w, h = face.box  # in the pixels of the photo as given: the upright box (72, 162, 153 x 190) turned
    assert 0 <= x and x + w <= width and 0 <= y and y + h <= height and w > h
    assert (x, y) == pytest.approx((162, 640 - 1 - (72 + 153)), abs=6)
    assert main(["verify", photos["turned"], photos["hopper"]]) == 0
    assert "photo turned 270 degrees to find it upright" in capsys.readouterr().out
    upright_only = FaceVerifier(rotate="none")
    try:
        assert upright_only.find_face(photos["turned"]).quality.score < 0.3
    except InputError as error:
        assert "no face found" in str(error)


def test_identify_names_every_face_of_a_photo(photos, tmp_path, capsys):
    gallery = tmp_path / "gallery"
    for name, number in (("Grace_Hopper", 2), ("Grace_Hopper", 4), ("Eileen_Collins", 3), ("Eileen_Collins", 4)):
        write_image(gallery / name / f"{number}.jpg", photo_of([demo_face(name, number)]))
    assert main(["index", str(gallery), "-o", str(tmp_path / "g.npz")]) == 0
    capsys.readouterr()
    assert main(["identify", photos["both"], "--gallery", str(tmp_path / "g.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [face["identity"] for face in report["faces"]] == ["Eileen_Collins", "Grace_Hopper"]
    assert report["identities"] == ["Eileen_Collins", "Grace_Hopper"] and report["faces_found"] == 2
    assert report["identity"] in report["identities"] and report["model"] and report["threshold_source"]
    assert main(["identify", photos["both"], "--gallery", str(tmp_path / "g.npz"), "--face", "2"]) == 0
    out = capsys.readouterr().out
    assert "face 2 of 2" in out and "identity: Grace_Hopper" in out and "Eileen_Collins" not in out.split("\n")[1]
    # a photo with a cut face enrols its whole face, and says so; --min-quality refuses a blurred one
    write_image(gallery / "Eileen_Collins" / "group.jpg", _cut_group())
    write_image(gallery / "Grace_Hopper" / "blurred.jpg", cv2.imread(photos["blurred"])[..., ::-1])
    assert main(["index", str(gallery), "-o", str(tmp_path / "g2.npz"), "--min-quality", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "group.jpg: face 1 of 2" in err and "blurred.jpg: face 1's quality" in err and "blurred or low" in err
    assert main(["identify", photos["blurred"], "--gallery", str(tmp_path / "g2.npz"), "--min-quality", "0.5"]) == 1
    assert "not searched: quality below --min-quality 0.5" in capsys.readouterr().out


def test_embed_lists_the_face_of_each_row_and_all_faces_on_request(photos, tmp_path, capsys):
    folder = tmp_path / "in"
    write_image(folder / "both.jpg", cv2.imread(photos["both"])[..., ::-1])
    write_image(folder / "one.jpg", cv2.imread(photos["hopper"])[..., ::-1])
    assert main(["embed", str(folder), "-o", str(tmp_path / "e.npz")]) == 0
    assert "1 photo(s) show several faces" in capsys.readouterr().err
    assert main(["embed", str(folder), "-o", str(tmp_path / "all.npz"), "--all-faces"]) == 0
    with np.load(tmp_path / "all.npz") as data:
        faces = json.loads(str(data["faces"]))
        assert data["embeddings"].shape[0] == 3 and [f["face"] for f in faces] == [1, 2, 1]
    rows = (tmp_path / "all.txt").read_text().splitlines()
    assert rows[1].endswith("both.jpg") and len(rows) == 3
    listed = json.loads((tmp_path / "all.faces.json").read_text())
    assert listed[1]["file"].endswith("both.jpg") and listed[1]["face"] == 2 and listed[1]["quality"] > 0.5


def test_quality_factors_follow_what_they_measure():
    template = DEFAULT_SPEC.landmarks
    yaw, roll, nose = pose_of(template)
    assert abs(yaw) < 1 and abs(roll) < 1 and nose == pytest.approx(FRONTAL_NOSE_HEIGHT)
    turned = template.copy()
    turned[2, 0] += 20  # the nose towards one eye: a head turned about 45 degrees
    assert pose_of(turned)[0] == pytest.approx(46, abs=3)
    rolled = template @ np.array([[0.0, 1.0], [-1.0, 0.0]])  # a quarter turn
    assert abs(pose_of(rolled)[1]) == pytest.approx(90, abs=1)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert inside_fraction(identity, (112, 112)) == 1.0
    assert inside_fraction(identity, (112, 56)) == pytest.approx(0.5, abs=0.1)
    face = demo_face("Grace_Hopper", 1)
    good = face_quality(face, template, 0.95, 1.0)
    assert good.score == 1.0 and good.reasons == []
    worse = {"size": face_quality(face, template * 0.3, 0.95, 1.0),
             "detection": face_quality(face, template, 0.65, 1.0),
             "pose": face_quality(face, turned, 0.95, 1.0),
             "sharpness": face_quality(cv2.GaussianBlur(face, (0, 0), 2), template, 0.95, 1.0),
             "exposure": face_quality((face * 0.1).astype(np.uint8), template, 0.95, 1.0),
             "border": face_quality(face, template, 0.95, 0.6)}
    for factor, quality in worse.items():
        assert quality.factors[factor] < 0.5 and quality.score < 0.5, factor
        assert len(quality.reasons) >= 1
    assert "detection" not in face_quality(face, template, None).factors  # left out when unknown


def test_the_default_operating_point_is_the_cards_far_1e_3_threshold(verifier):
    card = model_card(default_model())
    metric = card.lfw_metric(card.runtime_format())
    assert verifier.threshold == metric["threshold_at_far"]["1e-3"] > metric["best_threshold"]
    assert verifier.threshold_source.startswith(f"{card.name} card: FAR 1e-3 on LFW")
    assert card.thresholds(card.runtime_format())["best_accuracy_threshold"] == metric["best_threshold"]


@pytest.mark.parametrize("blur", [0, 3], ids=["sharp", "blurred"])
def test_every_demo_face_turned_any_way_is_turned_back(blur):
    from keras_arcface.alignment import FaceAligner

    aligner = FaceAligner()
    for name in ("Grace_Hopper", "Eileen_Collins"):
        for number in (1, 2, 3, 4):
            upright = photo_of([demo_face(name, number)], scale=1.5 + number / 4)
            if blur:
                upright = cv2.GaussianBlur(upright, (0, 0), blur)
            for quarter_turns in (1, 2, 3):
                turned = np.ascontiguousarray(np.rot90(upright, quarter_turns))
                face = aligner.pick(aligner.faces(turned), turned.shape)
                assert face.rotation == (360 - 90 * quarter_turns), (name, number, quarter_turns)
