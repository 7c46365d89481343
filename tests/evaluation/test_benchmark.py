"""Building an LFW-format benchmark from held-out identities: folds by person, balanced pairs, the
files the evaluator and --exclude read, and the CelebA hold-out script on a fake CelebA folder."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from keras_arcface.data import FaceFolder, read_identity_names
from keras_arcface.errors import InputError
from keras_arcface.evaluation import read_pairs
from keras_arcface.evaluation.benchmark import build_pairs_benchmark
from keras_arcface.evaluation.pairs import pairs_header
from tests.faces import make_face_folder

ROOT = Path(__file__).resolve().parents[2]


def _person(path):
    return Path(path).parent.name


def test_folds_hold_whole_people_and_the_files_read_back(tmp_path):
    faces = make_face_folder(tmp_path / "faces", identities=7, per_identity=4, size=16)
    names = [f"id_{k}" for k in (5, 0, 3, 1, 4, 2)]
    pairs_file = build_pairs_benchmark(faces, names, tmp_path / "bench", folds=3, pairs_per_fold=5, seed=1)
    assert pairs_header(pairs_file) == (3, 10)
    pairs = read_pairs(pairs_file, tmp_path / "bench" / "images")  # every named image exists
    for fold in range(3):
        block = pairs[fold * 10:(fold + 1) * 10]
        assert [p.same for p in block] == [True] * 5 + [False] * 5
        people = {_person(path) for p in block for path in (p.left, p.right)}
        assert people == set(names[2 * fold:2 * fold + 2])  # the fold's two people, and only them
        assert all((_person(p.left) == _person(p.right)) == p.same and p.left != p.right for p in block)
        same_people = [_person(p.left) for p in block if p.same]
        assert abs(same_people.count(names[2 * fold]) - same_people.count(names[2 * fold + 1])) <= 1  # round-robin
        assert len({(p.left, p.right) for p in block}) == 10
    assert read_identity_names(tmp_path / "bench" / "identities.txt") == names
    with open(tmp_path / "bench" / "sources.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24
    name, number = rows[5]["identity"], int(rows[5]["number"])
    numbered = tmp_path / "bench" / "images" / name / f"{name}_{number:04d}.jpg"
    assert numbered.read_bytes() == (faces / rows[5]["source"]).read_bytes()
    first = pairs_file.read_text()
    build_pairs_benchmark(faces, names, tmp_path / "bench", folds=3, pairs_per_fold=5, seed=1)  # rebuilt in place
    assert pairs_file.read_text() == first
    held_out = read_identity_names(tmp_path / "bench" / "identities.txt")
    training = FaceFolder.scan(faces, image_size=(16, 16), exclude=held_out)  # what train --exclude keeps
    assert sorted({Path(path).parent.name for path in training.paths}) == ["id_6"]


def test_errors_name_what_does_not_fit(tmp_path):
    faces = make_face_folder(tmp_path / "faces", identities=4, per_identity=3, size=16)
    names = [f"id_{k}" for k in range(4)]
    with pytest.raises(InputError, match="4 identities do not split into 3 folds"):
        build_pairs_benchmark(faces, names, tmp_path / "b", folds=3)
    with pytest.raises(InputError, match=r"fold 1 \(id_0, id_1\) has only 6 same-person pairs, fewer than "
                                         r"pairs_per_fold=7"):
        build_pairs_benchmark(faces, names, tmp_path / "b", folds=2, pairs_per_fold=7)


def test_the_celeba_holdout_script_skips_the_lfw_overlap_and_small_identities(tmp_path):
    celeba = tmp_path / "celeba"
    make_face_folder(celeba / "aligned", identities=8, per_identity=4, size=16)
    make_face_folder(tmp_path / "few", identities=1, per_identity=2, size=16)
    (tmp_path / "few" / "id_0").rename(celeba / "aligned" / "small")
    (celeba / "lfw_overlap_candidates.csv").write_text("id_a,n_a\nid_3,4\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_holdout_benchmark.py"), "--celeba",
                           str(celeba), "--output", str(tmp_path / "out"), "--identities", "4", "--min-images", "3",
                           "--folds", "2", "--pairs-per-fold", "4"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    held_out = read_identity_names(tmp_path / "out" / "identities.txt")
    assert len(held_out) == 4 and not {"id_3", "small"} & set(held_out)
    assert pairs_header(tmp_path / "out" / "pairs.txt") == (2, 8)


def test_an_identity_is_numbered_over_the_same_files_training_labels(tmp_path):
    faces = make_face_folder(tmp_path / "faces", identities=2, per_identity=3, size=16)
    (faces / "id_0" / "session2").mkdir()
    (faces / "id_0" / "000.png").rename(faces / "id_0" / "session2" / "000.png")  # one image in a subfolder
    build_pairs_benchmark(faces, ["id_0", "id_1"], tmp_path / "bench", folds=1, pairs_per_fold=3)
    with open(tmp_path / "bench" / "sources.csv") as handle:
        numbered = [row["source"] for row in csv.DictReader(handle) if row["identity"] == "id_0"]
    scanned = FaceFolder.scan(faces, image_size=(16, 16), identities={"id_0"})
    assert numbered == [Path(path).relative_to(faces).as_posix() for path in scanned.paths]
    assert "id_0/session2/000.png" in numbered
