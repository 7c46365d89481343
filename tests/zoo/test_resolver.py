"""The one resolver: bundled, installed package, cache, mirror, in that order, the same sha256 check everywhere;
`locate` (what `zoo list` shows) agrees with `fetch_artifact` (what every loader uses)."""

import hashlib
import importlib
import pathlib

import pytest

from keras_arcface.zoo import Artifact, InstalledModel, ZooOfflineError, fetch_artifact, locate

download_module = importlib.import_module("keras_arcface.zoo.download")  # the module (zoo.download is a function)

MODEL = "tiny-model"
FILE = "tiny.tflite"


@pytest.fixture
def sources(tmp_path, rng, monkeypatch):
    """The same file in every place the resolver looks; each test removes places."""
    data = rng.integers(0, 256, 50_000, dtype="uint8").tobytes()
    artifact = Artifact("tflite_float32", FILE, len(data), hashlib.sha256(data).hexdigest())
    places = {name: tmp_path / name / MODEL / FILE for name in ("bundled", "installed", "cache", "mirror")}
    for path in places.values():
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    monkeypatch.setattr(download_module, "BUNDLED_DIR", tmp_path / "bundled")
    package = InstalledModel(MODEL, "keras-arcface-model-tiny-model", "1.0.0", places["installed"].parent)
    monkeypatch.setattr("keras_arcface.zoo.packages.installed_models", lambda: {MODEL: package})
    options = {"urls": [str(tmp_path / "mirror")], "cache_dir": tmp_path / "cache"}
    return artifact, places, options


def where(artifact, options, **more):
    return locate(MODEL, artifact, **options, **more)


def test_the_resolver_order_and_locate_agree_with_fetch(sources):
    artifact, places, options = sources
    for expected, remove in (("bundled", None), ("installed", "bundled"), ("cached", "installed"),
                             ("mirror", "cache")):
        if remove:
            places[remove].unlink()
        location = where(artifact, options)
        assert location.source == expected
        fetched = pathlib.Path(fetch_artifact(MODEL, artifact, progress=False, **options))
        if expected == "mirror":  # fetched into the cache, which serves it from now on
            assert fetched == places["cache"] and where(artifact, options).source == "cached"
        else:
            assert str(fetched) == location.path == str(places[expected if expected != "cached" else "cache"])


def test_every_source_is_checked_against_the_card(sources):
    artifact, places, options = sources
    for name in ("bundled", "installed"):
        places[name].write_bytes(b"x" * artifact.size)  # right size, wrong bytes
    assert where(artifact, options).source == "cached"


def test_nothing_available_says_what_makes_it_so(sources):
    artifact, places, options = sources
    for path in places.values():
        path.unlink()
    location = where(artifact, options)
    assert location.source == "not available"
    assert "was packed without tiny.tflite" in location.cli_hint
    assert "pip install --force-reinstall" in location.cli_hint
    assert "--url" in location.cli_hint and "urls=" in location.python_hint
    offline = where(artifact, options, offline=True)
    assert offline.source == "not available" and "offline" in offline.detail
    with pytest.raises(ZooOfflineError) as raised:
        fetch_artifact(MODEL, artifact, offline=True, **options)
    assert "urls=" in str(raised.value) and "--url" in raised.value.cli_message
