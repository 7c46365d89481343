"""FaceIndex (exact numpy search, the FAISS HNSW backend) and `keras-arcface index` / `identify`."""

import json
import re
import sys

import numpy as np
import pytest

from keras_arcface.cli import main
from keras_arcface.errors import InputError
from keras_arcface.gallery import FaceIndex
from tests.faces import demo_face, photo_of, write_image


def _unit(rng, n, d=32):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_matches_brute_force(rng):
    gallery, queries = _unit(rng, 500), _unit(rng, 7)
    index = FaceIndex(gallery, [f"p{i % 50}" for i in range(500)])
    similarities, indices = index.search(queries, k=10)
    expected = np.argsort(-(queries @ gallery.T), axis=1)[:, :10]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(similarities, np.take_along_axis(queries @ gallery.T, expected, axis=1), atol=1e-6)
    assert index.search(queries[0], k=1000)[1].shape == (1, 500)  # k is capped at the gallery's size


def test_identify_lists_distinct_identities_best_first(rng):
    gallery = _unit(rng, 40)
    identities = [f"person{i // 4}" for i in range(40)]  # 10 people, 4 photos each
    index = FaceIndex(gallery, identities, files=[f"{n}/{i}.jpg" for i, n in enumerate(identities)], threshold=0.5)
    query = gallery[13] + 0.05 * _unit(rng, 1)[0]
    matches = index.identify_embeddings(query, top_k=3)[0]
    assert [m.identity for m in matches][0] == "person3" and len({m.identity for m in matches}) == 3
    assert matches[0].file == "person3/13.jpg" and matches[0].similarity >= matches[1].similarity
    assert index.is_known(matches[0]) and not index.is_known(matches[2])


def test_save_and_load_round_trip_and_bad_files(rng, tmp_path):
    index = FaceIndex(_unit(rng, 20), [f"p{i}" for i in range(20)], model="sface", threshold=0.33,
                      threshold_source="card")
    path = index.save(tmp_path / "gallery")
    assert path.name == "gallery.npz"
    loaded = FaceIndex.load(path)
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    assert loaded.identities.tolist() == index.identities.tolist() and loaded.model == "sface"
    assert loaded.threshold == 0.33 and loaded.threshold_source == "card"
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a gallery"):
        FaceIndex.load(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="keras-arcface index"):
        FaceIndex.load(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="dimensions"):
        loaded.search(np.ones(7, np.float32))
    with pytest.raises(InputError, match="identities for"):
        FaceIndex(_unit(rng, 3), ["a"])


def test_faiss_backend_keeps_the_api_with_high_recall(rng):
    gallery, queries = _unit(rng, 5000), _unit(rng, 50)
    identities = [str(i) for i in range(5000)]
    exact = FaceIndex(gallery, identities)
    approximate = FaceIndex(gallery, identities, backend="faiss")
    _, exact_top = exact.search(queries, k=10)
    similarities, approximate_top = approximate.search(queries, k=10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate_top, exact_top)])
    assert recall >= 0.95, recall
    assert (np.diff(similarities, axis=1) <= 1e-6).all()  # best first
    assert approximate.identify_embeddings(gallery[123], top_k=1)[0][0].identity == "123"


@pytest.fixture
def gallery_folder(tmp_path):
    root = tmp_path / "people"
    write_image(root / "Grace_Hopper" / "portrait.jpg", photo_of([demo_face("Grace_Hopper", 1)]))
    write_image(root / "Grace_Hopper" / "grey.jpg", photo_of([demo_face("Grace_Hopper", 4)], scale=2.4))
    write_image(root / "Eileen_Collins" / "portrait.jpg", photo_of([demo_face("Eileen_Collins", 1)]))
    write_image(root / "Eileen_Collins" / "empty_wall.jpg", np.full((200, 300, 3), 128, np.uint8))
    (root / "Eileen_Collins" / "broken.png").write_bytes(b"\x89PNG broken")
    return root


def test_cli_index_and_identify(gallery_folder, tmp_path, capsys):
    assert main(["index", str(gallery_folder), "-o", str(tmp_path / "gallery.npz")]) == 0
    captured = capsys.readouterr()
    assert "3 faces of 2 people" in captured.out and "skipped 2 file(s)" in captured.err
    assert "empty_wall.jpg: no face found" in captured.err and "broken.png: not a decodable image" in captured.err
    query = tmp_path / "query.jpg"
    write_image(query, photo_of([demo_face("Grace_Hopper", 2)], scale=2.2))
    assert main(["identify", str(query), "--gallery", str(tmp_path / "gallery.npz"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "identity: Grace_Hopper" in out and "2. Eileen_Collins" in out
    assert main(["identify", str(query), "--gallery", str(tmp_path / "gallery.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identity"] == "Grace_Hopper" and report["matches"][0]["above_threshold"]
    from keras_arcface.zoo import default_model

    assert report["model"].startswith(default_model()) and "LFW" in report["threshold_source"]  # as verify --json
    assert main(["identify", str(query), "--gallery", str(tmp_path / "gallery.npz"), "--far", "1e-4", "--json"]) == 0
    from keras_arcface.zoo import default_model, model_card

    card = model_card(default_model())
    assert json.loads(capsys.readouterr().out)["threshold"] == card.thresholds(card.runtime_format())["far"]["1e-4"]
    # someone not in the gallery: unknown, exit 1
    stranger = photo_of([demo_face("Eileen_Collins", 3)])[:, :, ::-1].copy()  # another capture, colours swapped
    write_image(tmp_path / "stranger.jpg", stranger)
    code = main(["identify", str(tmp_path / "stranger.jpg"), "--gallery", str(tmp_path / "gallery.npz"),
                 "--threshold", "0.99"])
    assert code == 1 and "identity: unknown" in capsys.readouterr().out
    assert main(["index", str(tmp_path / "nowhere"), "-o", str(tmp_path / "g.npz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_python_identify_matches_the_cli(gallery_folder):
    index = FaceIndex.build(gallery_folder)
    assert len(index) == 3 and len(index.skipped) == 2
    matches = index.identify(photo_of([demo_face("Eileen_Collins", 4)], scale=2.2))
    assert matches[0].identity == "Eileen_Collins" and index.is_known(matches[0])


def _bad_gallery_files(rng, tmp_path):
    good = FaceIndex(_unit(rng, 5), [f"p{i}" for i in range(5)]).save(tmp_path / "good.npz")
    (tmp_path / "text.npz").write_text("a text file that someone named .npz, long enough to be cut mid-word " * 3)
    (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    return good


def test_a_file_that_is_not_a_gallery_or_is_damaged_gets_one_clear_line(rng, tmp_path, capsys):
    _bad_gallery_files(rng, tmp_path)
    expected = {"text.npz": "(not an .npz archive)", "truncated.npz": "is a damaged gallery (truncated or corrupt",
                "other.npz": "(an .npz without embeddings, files, identities, meta)"}
    for name, text in expected.items():
        with pytest.raises(InputError, match=re.escape(text)):
            FaceIndex.load(tmp_path / name)
        assert main(["identify", str(tmp_path / name), "--gallery", str(tmp_path / name)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and text in lines[0] and "Traceback" not in lines[0], lines


def test_a_missing_faiss_is_named_not_blamed_on_the_file(rng, tmp_path, monkeypatch):
    good = _bad_gallery_files(rng, tmp_path)
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss raises ImportError
    with pytest.raises(InputError, match="needs FAISS: pip install faiss-cpu") as raised:
        FaceIndex.load(good, backend="faiss")
    assert "not a gallery" not in str(raised.value)


def test_argument_ranges_are_checked(rng, tmp_path, capsys):
    index = FaceIndex(_unit(rng, 5), [f"p{i}" for i in range(5)])
    for bad in (0, -1, 1.5):
        with pytest.raises(InputError, match="top_k must be an integer >= 1"):
            index.identify_embeddings(_unit(rng, 1), top_k=bad)
    with pytest.raises(InputError, match="ef_search .* must be >= 1"):
        FaceIndex(_unit(rng, 5), [f"p{i}" for i in range(5)], ef_search=0)
    from keras_arcface.verification import FaceVerifier

    with pytest.raises(InputError, match=r"threshold must be a cosine similarity in \[-1, 1\], got 2"):
        FaceVerifier(threshold=2)
    gallery = index.save(tmp_path / "g.npz")
    for argv, text in ((["identify", "x.jpg", "--gallery", str(gallery), "--top-k", "0"], "--top-k: must be"),
                       (["identify", "x.jpg", "--gallery", str(gallery), "--top-k", "-1"], "--top-k: must be"),
                       (["verify", "a.jpg", "b.jpg", "--threshold", "2"], "--threshold: must be a cosine"),
                       (["verify", "a.jpg", "b.jpg", "--far", "3"], "--far: must be a false-accept rate")):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 2 and text in capsys.readouterr().err


def test_embed_writes_the_file_it_is_told(tmp_path, capsys):
    from keras_arcface.demo import DEMO_DATA

    faces = DEMO_DATA / "faces" / "Grace_Hopper"
    assert main(["embed", str(faces), "-o", str(tmp_path / "emb.npz")]) == 0
    with np.load(tmp_path / "emb.npz") as data:
        assert data["embeddings"].shape[0] == len(data["files"]) == len(list(faces.glob("*.jpg")))
    assert not (tmp_path / "emb.npz.npy").exists()
    assert main(["embed", str(faces), "-o", str(tmp_path / "plain")]) == 0 and (tmp_path / "plain.npy").is_file()
    capsys.readouterr()
    assert main(["embed", str(faces), "-o", str(tmp_path / "emb.csv")]) == 2
    assert "name it emb.npy or emb.npz" in capsys.readouterr().err


def test_a_gallery_from_a_list_of_photos_leaves_the_query_out(gallery_folder):
    query = gallery_folder / "Grace_Hopper" / "grey.jpg"
    index = FaceIndex.build(p for p in gallery_folder.glob("*/*") if p != query)
    assert len(index) == 2 and str(query) not in index.files.tolist()
    best = index.identify(query)[0]
    assert best.identity == "Grace_Hopper" and best.similarity < 0.999  # a match, not the same photo
    with pytest.raises(InputError, match="no photos given"):
        FaceIndex.build([])


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_the_scale_benchmark_measures_every_backend_and_its_record_says_when_to_switch(tmp_path):
    """scripts/gallery_benchmark.py's back-ends on a small gallery (the exact ones find what numpy finds), and
    docs/gallery_scale.json: every back-end at a million faces, with the figures docs/verification.md states."""
    import importlib.util

    sys.path.insert(0, str(ROOT / "scripts"))
    import gallery_benchmark

    rng = np.random.default_rng(0)
    gallery = _unit(rng, 1000, 16)
    queries = gallery[:20] + 0.05 * _unit(rng, 20, 16)
    exact = gallery_benchmark.Searcher("numpy", gallery, tmp_path).search(queries, 10)
    backends = [b for b in gallery_benchmark.BACKENDS if b == "numpy" or importlib.util.find_spec(
        "faiss" if b.startswith("faiss") else "milvus_lite")]
    for backend in backends:
        searcher = gallery_benchmark.Searcher(backend, gallery, tmp_path / backend, ivf_pq_bytes=4)
        found = searcher.search(queries, 10)
        searcher.close()
        assert found.shape == (20, 10) and searcher.megabytes > 0, backend
        if backend in ("numpy", "faiss-flat", "faiss-hnsw", "milvus"):
            assert np.array_equal(found[:, 0], exact[:, 0]), backend
    record = json.loads((ROOT / "docs" / "gallery_scale.json").read_text())
    million = next(row for row in record["results"] if row["entries"] == 1_000_000)["backends"]
    assert set(million) == set(gallery_benchmark.BACKENDS)
    assert million["faiss-hnsw"]["recall_at_1"] >= 0.99 and million["faiss-ivfpq"]["recall_at_1"] < 0.9
    assert million["numpy"]["recall_at_1"] == million["milvus"]["recall_at_1"] == 1.0
    text = (ROOT / "docs" / "verification.md").read_text()
    for backend in million.values():
        assert f"{backend['ms_per_query_single']:,.2f}" in text and f"{backend['recall_at_1']:.3f}" in text
