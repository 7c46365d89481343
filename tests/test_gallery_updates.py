"""Galleries that grow: the same contract on every back-end (add, remove, re-add, rename, search equal to exact
numpy search, a reopen), enrolment that skips what it holds, survives SIGKILL and a second writer, and the
`gallery` commands."""

import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_arcface.cli import main
from keras_arcface.errors import InputError
from keras_arcface.gallery import ENROL_CHUNK, FaceIndex, enrol, new_gallery, open_gallery
from tests.faces import demo_face, write_image


def _unit(rng, count, dimensions=32):
    vectors = rng.normal(size=(count, dimensions))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _installed(module):
    return __import__("importlib").util.find_spec(module) is not None


MILVUS = pytest.mark.skipif(not (_installed("pymilvus") and _installed("milvus_lite")),
                            reason="pymilvus and milvus-lite are not installed (pip install keras-arcface[milvus])")
#: Every back-end of the gallery contract: a file searched by numpy or FAISS, a Milvus Lite file, a Milvus server
#: (Milvus Lite's gRPC server, started by the test: the client code is the one a Milvus cluster gets).
KINDS = ["numpy", pytest.param("faiss", marks=pytest.mark.skipif(not _installed("faiss"), reason="faiss is not "
                                                                 "installed")),
         pytest.param("milvus-lite", marks=MILVUS), pytest.param("milvus-server", marks=MILVUS)]


def _location(kind, tmp_path, request, name="g"):
    """``(location, search backend)`` of a new gallery of ``kind``."""
    if kind == "milvus-lite":
        return str(tmp_path / f"{name}.db"), "numpy"
    if kind == "milvus-server":
        return f"milvus://{request.getfixturevalue('milvus_server')}/{name}_{tmp_path.name[-12:].replace('-', '_')}", \
            "numpy"
    return str(tmp_path / f"{name}.npz"), kind


def _held(gallery):
    """Each entry's hash and quality (None: not recorded), in hash order."""
    return sorted((e["hash"], None if np.isnan(e["quality"]) else round(e["quality"], 4)) for e in gallery.entries())


def _files(row):
    return [match.file for match in row]


@pytest.mark.parametrize("kind", KINDS)
def test_every_backend_keeps_the_contract(kind, tmp_path, request):
    rng = np.random.default_rng(0)
    entries = _unit(rng, 60)
    names = [f"p{i % 12}" for i in range(60)]
    files = [f"{i}.jpg" for i in range(60)]
    hashes = [f"sha256:{i:064x}#1" for i in range(60)]
    location, backend = _location(kind, tmp_path, request)
    gallery = new_gallery(location, entries[:40], names[:40], files[:40], hashes[:40], qualities=[0.9] * 40,
                          model="m", threshold=0.3, threshold_source="test", backend=backend)
    gallery.add(entries[40:], names[40:], files[40:], hashes[40:])
    gallery.add(entries[41][None], ["p5"], ["41.jpg"], [hashes[41]])  # the same face again is one face (Milvus)
    # (a file gallery appends it: enrolment, not the gallery, skips what is held)
    if kind.startswith("milvus"):
        assert len(gallery) == 60
    else:
        gallery.remove(file="41.jpg")
        gallery.add(entries[41][None], ["p5"], ["41.jpg"], [hashes[41]])
    queries = entries[::7] + 0.05 * _unit(rng, len(entries[::7]))
    exact = FaceIndex(entries, names, files)
    assert [_files(row) for row in gallery.nearest(queries, 3)] == [_files(row) for row in exact.nearest(queries, 3)]
    assert gallery.held_contents([hashes[3].split("#")[0], "sha256:none"]) == {hashes[3].split("#")[0]}
    assert gallery.remove(identity="p3") == 5 and "p3" not in gallery.people() and len(gallery) == 55
    assert all(match.identity != "p3" for row in gallery.identify_embeddings(queries) for match in row)
    gallery.add(entries[3][None], ["p3"], ["3.jpg"], [hashes[3]])  # re-added
    assert gallery.identify_embeddings(entries[3][None], 1)[0][0].identity == "p3"
    assert gallery.remove(file="0.jpg") == 1
    gallery.rename("p1", "Ada")
    gallery.rename("p2", 'Grace "Amazing" O\'Hopper')  # a name that needs quoting in a filter
    assert gallery.people()["Ada"] == 5 and "p1" not in gallery.people()
    assert gallery.remove(identity='Grace "Amazing" O\'Hopper') == 5
    for bad, message in ((dict(identity="nobody"), "holds no identity 'nobody'"), (dict(), "an identity or a file")):
        with pytest.raises(InputError, match=message):
            gallery.remove(**bad)
    before = (gallery.people(), [_files(row) for row in gallery.nearest(queries, 3)],
              _held(gallery))
    gallery.commit()
    gallery.close()
    with open_gallery(location, backend) as again:
        assert (again.people(), [_files(row) for row in again.nearest(queries, 3)],
                _held(again)) == before
        assert (again.model, again.threshold, again.threshold_source) == ("m", 0.3, "test")
        assert again.stats()["faces"] == len(again) == 50
        assert all(e["added"] > 1.7e9 for e in again.entries())
        assert again.present()
    if kind == "milvus-server":  # another client drops it
        with open_gallery(location) as held, open_gallery(location) as other:
            other.delete()
            assert not held.present()
    elif kind == "milvus-lite":  # (a Milvus Lite file serves one connection)
        open_gallery(location).delete()
        assert open_gallery(location, missing_ok=True) is None
    else:
        held = open_gallery(location, backend)
        pathlib.Path(location).unlink()
        assert not held.present()


@pytest.mark.parametrize("kind", [pytest.param("milvus-lite", marks=MILVUS)])
def test_a_gallery_moves_between_a_file_and_milvus(kind, tmp_path, request, capsys):
    rng = np.random.default_rng(1)
    source = FaceIndex(_unit(rng, 30), [f"p{i % 6}" for i in range(30)], [f"{i}.jpg" for i in range(30)], model="m",
                       threshold=0.4, hashes=[f"sha256:{i:064x}#1" for i in range(30)], path=tmp_path / "a.npz")
    source.commit()
    database, _ = _location(kind, tmp_path, request)
    assert main(["gallery", "copy", str(tmp_path / "a.npz"), database]) == 0
    assert "30 faces of 6 people" in capsys.readouterr().out
    assert main(["gallery", "copy", database, str(tmp_path / "b.npz")]) == 0
    back = FaceIndex.load(tmp_path / "b.npz")
    order = np.argsort(back.hashes)
    assert np.allclose(back.embeddings[order], source.embeddings, atol=1e-6)
    assert back.identities[order].tolist() == source.identities.tolist() and back.model == "m"
    assert np.array_equal(back.added[order], source.added)


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


@pytest.mark.parametrize("suffix", [".npz", pytest.param(".db", marks=MILVUS)])
def test_a_killed_enrolment_keeps_whole_chunks_and_two_writers_lose_nothing(suffix, tmp_path, capsys):
    """For a gallery file and a Milvus Lite gallery (whose rows are keyed by content: the database's own
    guarantee), a SIGKILL mid-folder leaves whole chunks and a rerun adds exactly the rest; two writers at once
    lose nothing."""
    album = _album(tmp_path / "album", copies=(ENROL_CHUNK + 7) // 8 + 1)  # more than one chunk
    total = sum(1 for _ in album.glob("*/*.png"))
    gallery = tmp_path / f"g{suffix}"
    killed = subprocess.Popen(_index_command(album, gallery), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240

    def enrolled():
        if suffix == ".npz":
            return gallery.is_file()
        return any(gallery.glob("**/data_*.parquet"))  # (a commit flushes the first chunk to a segment)

    while not enrolled() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)  # (no-op when it already ended)
    assert killed.wait() in (-signal.SIGKILL, 0)
    with open_gallery(gallery) as partial:  # whole: it opens
        held = len(partial)
        assert held in (ENROL_CHUNK, total) and len({e["hash"] for e in partial.entries()}) == held
    rerun = subprocess.run(_index_command(album, gallery), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total - held} faces added ({held} photos already in the gallery)" in rerun.stdout
    with open_gallery(gallery) as whole:
        assert len(whole) == total
    # two processes enrolling two albums into one new gallery at once
    first = _album(tmp_path / "a", ("Grace_Hopper",), seed=1)
    second = _album(tmp_path / "b", ("Eileen_Collins",), seed=2)
    shared = tmp_path / f"shared{suffix}"
    writers = [subprocess.Popen(_index_command(folder, shared), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for folder in (first, second)]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0], [w.stderr.read() for w in writers]
    with open_gallery(shared) as both:
        assert both.people() == {"Eileen_Collins": 8, "Grace_Hopper": 8}
    assert main(["identify", str(first / "Grace_Hopper" / "1_0.png"), "--gallery", str(shared), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["identity"] == "Grace_Hopper"


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
