"""Galleries that grow: the same contract on every back-end (add, remove, re-add, rename, search equal to exact
numpy search, a reopen), enrolment that skips what it holds, survives SIGKILL and a second writer, and the
`gallery` commands."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_arcface.cli import main
from keras_arcface.errors import InputError
from keras_arcface.gallery import ENROL_CHUNK, FaceIndex, enrol
from tests.faces import demo_face, write_image

BACKENDS = ["numpy", pytest.param("faiss", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("faiss") is None, reason="faiss is not installed"))]


def _unit(rng, count, dimensions=32):
    vectors = rng.normal(size=(count, dimensions))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_keeps_the_contract(backend, tmp_path):
    rng = np.random.default_rng(0)
    entries = _unit(rng, 60)
    names = [f"p{i % 12}" for i in range(60)]
    index = FaceIndex(entries[:40], names[:40], [f"{i}.jpg" for i in range(40)], model="m", backend=backend,
                      hashes=[f"sha256:{i}#1" for i in range(40)])
    index.add(entries[40:], names[40:], [f"{i}.jpg" for i in range(40, 60)], [f"sha256:{i}#1" for i in range(40, 60)])
    queries = entries[::7] + 0.05 * _unit(rng, len(entries[::7]))
    exact = FaceIndex(entries, names)
    assert np.array_equal(index.search(queries, 3)[1], exact.search(queries, 3)[1])
    assert index.remove(identity="p3") == 5 and "p3" not in index.people() and len(index) == 55
    assert all(match.identity != "p3" for row in index.identify_embeddings(queries) for match in row)
    index.add(entries[3][None], ["p3"], ["3.jpg"], ["sha256:3#1"])  # re-added
    assert index.identify_embeddings(entries[3][None], 1)[0][0].identity == "p3"
    assert index.remove(file="0.jpg") == 1
    index.rename("p1", "Ada")
    assert index.people()["Ada"] == 5 and "p1" not in index.people()
    again = FaceIndex.load(index.save(tmp_path / "g.npz"), backend=backend)
    assert again.people() == index.people() and list(again.hashes) == list(index.hashes)
    assert np.array_equal(again.search(queries, 3)[1], index.search(queries, 3)[1])
    for bad, message in ((dict(identity="nobody"), "holds no identity 'nobody'"), (dict(), "an identity or a file")):
        with pytest.raises(InputError, match=message):
            index.remove(**bad)


def _album(root, people=("Grace_Hopper", "Eileen_Collins"), copies=2, seed=0):
    """``root/<person>/<n>.png``: each bundled crop, ``copies`` times with a different speck of noise (a
    different photo to the content hash, the same face)."""
    rng = np.random.default_rng(seed)
    for person in people:
        for number in (1, 2, 3, 4):
            for copy in range(copies):
                face = demo_face(person, number).astype(np.int16) + rng.integers(-2, 3, (112, 112, 3))
                write_image(root / person / f"{number}_{copy}.png", np.clip(face, 0, 255).astype(np.uint8))
    return root


def test_enrolment_adds_what_is_missing_and_nothing_twice(tmp_path):
    album = _album(tmp_path / "album")
    gallery = tmp_path / "g.npz"
    index, added, held = enrol(gallery, album)
    assert (added, held, len(index)) == (16, 0, 16) and index.people() == {"Eileen_Collins": 8, "Grace_Hopper": 8}
    index, added, held = enrol(gallery, album)
    assert (added, held, len(index)) == (0, 16, 16)
    write_image(album / "Grace_Hopper" / "copy.png", demo_face("Grace_Hopper", 1))  # a new photo ...
    (album / "Someone").mkdir()
    (album / "Someone" / "same.png").write_bytes((album / "Grace_Hopper" / "1_0.png").read_bytes())  # ... and a copy
    index, added, held = enrol(gallery, album)
    assert (added, held, len(index)) == (1, 17, 17) and "Someone" not in index.people()
    assert len(set(index.hashes)) == len(index)
    assert enrol(gallery, album, rebuild=True)[1] == 17


def _index_command(folder, gallery):
    return [sys.executable, "-m", "keras_arcface.cli", "index", str(folder), "-o", str(gallery)]


def test_a_killed_enrolment_keeps_whole_chunks_and_two_writers_lose_nothing(tmp_path):
    album = _album(tmp_path / "album", copies=(ENROL_CHUNK + 7) // 8 + 1)  # more than one chunk
    total = sum(1 for _ in album.glob("*/*.png"))
    gallery = tmp_path / "g.npz"
    killed = subprocess.Popen(_index_command(album, gallery), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not gallery.is_file() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    partial = FaceIndex.load(gallery)  # whole: it loads
    assert len(partial) in (ENROL_CHUNK, total) and len(set(partial.hashes)) == len(partial)
    rerun = subprocess.run(_index_command(album, gallery), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total - len(partial)} faces added ({len(partial)} photos already in the gallery)" in rerun.stdout
    assert len(FaceIndex.load(gallery)) == total
    # two processes enrolling two albums into one new gallery at once
    first = _album(tmp_path / "a", ("Grace_Hopper",), seed=1)
    second = _album(tmp_path / "b", ("Eileen_Collins",), seed=2)
    shared = tmp_path / "shared.npz"
    writers = [subprocess.Popen(_index_command(folder, shared), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for folder in (first, second)]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0]
    assert FaceIndex.load(shared).people() == {"Eileen_Collins": 8, "Grace_Hopper": 8}


def test_the_gallery_commands(tmp_path, capsys):
    album = _album(tmp_path / "album", copies=1)
    gallery = tmp_path / "g.npz"
    assert main(["index", str(album), "-o", str(gallery)]) == 0
    assert "8 faces added (0 photos already in the gallery)" in capsys.readouterr().out
    assert main(["gallery", "list", str(gallery)]) == 0
    assert capsys.readouterr().out.splitlines() == ["Eileen_Collins\t4", "Grace_Hopper\t4"]
    assert main(["gallery", "stats", str(gallery)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["faces"] == 8 and stats["identities"] == 2 and stats["with_content_hash"] == 8
    assert main(["gallery", "rename", str(gallery), "Grace_Hopper", "Grace Hopper"]) == 0
    assert main(["gallery", "remove", str(gallery), "--file", "Eileen_Collins/1_0.png"]) == 0
    assert main(["gallery", "remove", str(gallery), "--identity", "nobody"]) == 2
    assert "holds no identity 'nobody'" in capsys.readouterr().err
    assert FaceIndex.load(gallery).people() == {"Eileen_Collins": 3, "Grace Hopper": 4}
    assert main(["index", str(album), "-o", str(gallery)]) == 0  # the removed photo comes back, nothing else
    assert "1 faces added (7 photos already in the gallery)" in capsys.readouterr().out


def test_a_gallery_from_before_content_hashes_is_not_enrolled_twice(tmp_path):
    album = _album(tmp_path / "album", copies=1)
    old = FaceIndex.build(album)  # as `index` wrote galleries before: no hashes
    assert set(old.hashes) == {""}
    old.save(tmp_path / "old.npz")
    index, added, held = enrol(tmp_path / "old.npz", album)
    assert (added, held, len(index)) == (0, 8, 8) and all(entry.startswith("sha256:") for entry in index.hashes)
    assert all(FaceIndex.load(tmp_path / "old.npz").hashes != "")
