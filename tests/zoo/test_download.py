"""Downloads against a real HTTP server on 127.0.0.1: success, every failure mode, cache, lock, offline."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from keras_arcface.zoo import (
    Artifact,
    ZooDownloadError,
    ZooOfflineError,
    cache_root,
    clear_cache,
    default_model,
    fetch_artifact,
    mirror_list,
    model_card,
)
from tests.zoo.http_mirror import HttpMirror

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = "tiny-model"
FILE = "tiny.weights.h5"


@pytest.fixture
def payload(tmp_path, rng):
    data = rng.integers(0, 256, 300_000, dtype="uint8").tobytes()
    folder = tmp_path / "mirror" / MODEL
    folder.mkdir(parents=True)
    (folder / FILE).write_bytes(data)
    artifact = Artifact("keras", FILE, len(data), hashlib.sha256(data).hexdigest())
    return tmp_path / "mirror", artifact, data


@pytest.fixture
def mirror(payload):
    with HttpMirror(payload[0]) as server:
        yield server


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def leftovers(cache):
    """Every file in the cache folder except lock files."""
    return sorted(p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_clean_download_is_verified_and_atomic(payload, mirror, cache):
    _, artifact, data = payload
    path = fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache, progress=False)
    assert path == cache / MODEL / FILE and path.read_bytes() == data
    assert leftovers(cache) == [FILE]  # no .part file left behind
    assert mirror.count(MODEL, FILE) == 1


def test_clear_cache_removes_one_model_or_everything(payload, cache):
    root, artifact, _ = payload
    fetch_artifact(MODEL, artifact, urls=str(root), cache_dir=cache, progress=False)
    other = cache / "other-model" / "x.onnx"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"x")
    clear_cache(MODEL, cache_dir=cache)
    assert not (cache / MODEL).exists() and other.is_file()
    clear_cache(cache_dir=cache)
    assert not cache.exists()
    clear_cache("never-cached", cache_dir=cache)  # nothing to remove is not an error


def test_second_load_comes_from_the_cache_without_touching_the_server(payload, mirror, cache):
    _, artifact, _ = payload
    fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache, progress=False)
    again = fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache, progress=False)
    assert again.is_file() and mirror.count(MODEL, FILE) == 1


@pytest.mark.parametrize("mode, message", [
    ("corrupt", "sha256 mismatch"),
    ("truncate", "truncated"),
    ("404", "HTTP 404"),
    ("500", "HTTP 500"),
])
def test_a_failed_download_names_the_url_and_leaves_nothing(payload, mirror, cache, mode, message):
    _, artifact, _ = payload
    with pytest.raises(ZooDownloadError, match=message) as error:
        fetch_artifact(MODEL, artifact, urls=mirror.url(mode), cache_dir=cache, progress=False)
    assert f"{mirror.url(mode)}/{MODEL}/{FILE}" in str(error.value)
    assert leftovers(cache) == []


def test_a_stalled_server_times_out(payload, mirror, cache):
    _, artifact, _ = payload
    start = time.perf_counter()
    with pytest.raises(ZooDownloadError, match="stalled: no data for 0.5 s"):
        fetch_artifact(MODEL, artifact, urls=mirror.url("stall"), cache_dir=cache, timeout=0.5, progress=False)
    assert time.perf_counter() - start < 10
    assert leftovers(cache) == []


def test_mirrors_are_tried_in_order_until_one_gives_the_right_bytes(payload, mirror, cache):
    _, artifact, data = payload
    urls = [mirror.url("404"), mirror.url("corrupt"), mirror.url("ok")]
    path = fetch_artifact(MODEL, artifact, urls=urls, cache_dir=cache, progress=False)
    assert path.read_bytes() == data
    assert mirror.count(MODEL, FILE) == 3


def test_a_corrupt_cache_entry_is_replaced_not_loaded(payload, mirror, cache):
    _, artifact, data = payload
    (cache / MODEL).mkdir(parents=True)
    (cache / MODEL / FILE).write_bytes(data[:-1] + b"x")
    path = fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache, progress=False)
    assert path.read_bytes() == data and mirror.count(MODEL, FILE) == 1


def test_offline_mode_uses_the_cache_only(payload, mirror, cache, monkeypatch):
    _, artifact, _ = payload
    monkeypatch.setenv("KERAS_ARCFACE_OFFLINE", "1")
    with pytest.raises(ZooOfflineError, match="is not in the cache"):
        fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache, progress=False)
    assert mirror.count(MODEL, FILE) == 0
    fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache, progress=False, offline=False)
    assert fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache).is_file()
    (cache / MODEL / FILE).write_bytes(b"broken")
    with pytest.raises(ZooOfflineError, match=r"was corrupt \(removed\) and is no longer in the cache"):
        fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache)
    assert not (cache / MODEL / FILE).exists()  # offline too, a corrupt entry does not stay in the cache
    assert mirror.count(MODEL, FILE) == 1


def test_local_folders_and_file_urls_are_mirrors(payload, cache):
    root, artifact, data = payload
    for url in (str(root), root.as_uri()):
        path = fetch_artifact(MODEL, artifact, urls=url, cache_dir=cache / url[:4], progress=False)
        assert path.read_bytes() == data


def test_no_mirror_and_a_missing_local_file_fail_clearly(payload, cache, tmp_path):
    _, artifact, _ = payload
    with pytest.raises(ZooDownloadError, match="no mirror is configured") as raised:
        fetch_artifact(MODEL, artifact, urls=[], cache_dir=cache)
    # Python's message names Python's arguments, the command line's its flags; both name the model package.
    assert "urls=" in str(raised.value) and "--url" not in str(raised.value)
    assert "--url" in raised.value.cli_message and "urls=" not in raised.value.cli_message
    for message in (str(raised.value), raised.value.cli_message):
        assert f"pip install keras-arcface-model-{MODEL}" in message
    with pytest.raises(ZooDownloadError, match="no such file"):
        fetch_artifact(MODEL, artifact, urls=str(tmp_path / "nowhere"), cache_dir=cache)


def test_environment_sets_cache_and_mirrors(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_ARCFACE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("KERAS_ARCFACE_ZOO_URLS", "http://a.example/x, file:///b  /c")
    assert cache_root() == tmp_path / "c"
    assert mirror_list() == ["http://a.example/x", "file:///b", "/c"]
    monkeypatch.delenv("KERAS_ARCFACE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "keras-arcface"


def test_progress_bar_only_when_asked_or_on_a_terminal(payload, mirror, cache, capsys):
    _, artifact, _ = payload
    fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache / "quiet")
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
    fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache / "loud", progress=True)
    assert FILE in capsys.readouterr().err


def test_two_processes_fetching_the_same_file_download_it_once(payload, mirror, cache):
    _, artifact, data = payload
    script = (
        "import json, sys, time\n"
        "from keras_arcface.zoo import Artifact, fetch_artifact\n"
        "spec = json.loads(sys.argv[1])\n"
        "start = time.time()\n"
        "path = fetch_artifact(spec['model'], Artifact(**spec['artifact']), urls=spec['url'],"
        " cache_dir=spec['cache'], progress=False)\n"
        "print(path, start, time.time())\n")
    spec = json.dumps({"model": MODEL, "url": mirror.url("slow"), "cache": str(cache),
                       "artifact": {"format": "keras", "file": FILE, "size": artifact.size,
                                    "sha256": artifact.sha256}})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", script, spec], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    results = [out.split() for out, _ in outputs]
    assert {path for path, _, _ in results} == {str(cache / MODEL / FILE)}
    starts, ends = [float(r[1]) for r in results], [float(r[2]) for r in results]
    assert max(starts) < min(ends), "the two fetches did not overlap; the test proves nothing"
    assert (cache / MODEL / FILE).read_bytes() == data
    assert mirror.count(MODEL, FILE) == 1  # the second process waited on the lock, then used the cache
    assert leftovers(cache) == [FILE]


def test_a_file_installed_with_the_package_is_used_offline_and_verified(tmp_path, monkeypatch):
    download_module = sys.modules["keras_arcface.zoo.download"]  # (the package's `download` is the function)

    card = model_card(default_model())
    artifact = card.artifact(card.runtime_format())
    bundled = tmp_path / "bundled"
    (bundled / card.name).mkdir(parents=True)
    source = pathlib.Path(__file__).resolve().parents[2] / "saved_models" / card.name / artifact.file
    (bundled / card.name / artifact.file).write_bytes(source.read_bytes())
    monkeypatch.setattr(download_module, "BUNDLED_DIR", bundled)
    path = fetch_artifact(card.name, artifact, urls=[], cache_dir=tmp_path / "cache", offline=True)
    assert path == bundled / card.name / artifact.file and not (tmp_path / "cache").exists()
    (bundled / card.name / artifact.file).write_bytes(b"tampered")  # a damaged install is not used
    with pytest.raises(ZooOfflineError):
        fetch_artifact(card.name, artifact, urls=[], cache_dir=tmp_path / "cache", offline=True)


def test_a_downloaded_file_gets_the_umask_mode(payload, mirror, cache):
    _, artifact, _ = payload
    previous = os.umask(0o022)
    try:
        path = fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=cache, progress=False)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644


def test_an_unwritable_cache_uses_a_local_mirror_in_place_or_names_the_setting(payload, mirror, tmp_path):
    root, artifact, _ = payload
    (tmp_path / "a-file").write_text("the cache cannot be made under a file, as under a read-only home")
    unwritable = tmp_path / "a-file" / "cache"
    in_place = fetch_artifact(MODEL, artifact, urls=str(root), cache_dir=unwritable, progress=False)
    assert in_place == root / MODEL / FILE  # a checkout's saved_models/: the file used where it is
    with pytest.raises(ZooDownloadError, match="cannot be written") as raised:
        fetch_artifact(MODEL, artifact, urls=mirror.url("ok"), cache_dir=unwritable, progress=False)
    assert "KERAS_ARCFACE_CACHE=DIR or cache_dir=" in str(raised.value)
    assert "--cache-dir DIR" in raised.value.cli_message
