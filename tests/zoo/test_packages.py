"""Zoo models as Python packages: `zoo pack` builds real wheels, pip installs them (offline, --no-index), and every
command finds the models by name through the resolver, with no mirror and an empty cache.  (.ci/check_wheel does
the same in a fresh runtime-only venv with the built keras-arcface wheel.)"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from keras_arcface.zoo import (
    distribution_name,
    installed_models,
    list_models,
    locate,
    model_card,
    pack,
)
from tests.faces import DEMO_FACES, demo_face, photo_of, write_image

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Two small models, each with its runtime file only (the packer's format option).
PACKED = {"mobilefacenet-512": ["tflite_float16"], "mobilefacenet-192": ["tflite_float16"]}


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheelhouse")
    return {name: pack(name, folder, formats=formats) for name, formats in PACKED.items()}


@pytest.fixture(scope="module")
def site(wheelhouse, tmp_path_factory):
    """The model wheels installed by pip from the wheelhouse alone (--no-index: offline) into a folder on PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    folder = next(iter(wheelhouse.values())).parent
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--disable-pip-version-check", "--find-links", str(folder), "--target", str(target),
                    *(distribution_name(name) for name in PACKED)], check=True, capture_output=True)
    return target


def isolated_env(site, tmp_path):
    """No mirror, an empty cache, offline: only the bundled default and installed packages can serve a model."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
            "KERAS_ARCFACE_ZOO_URLS": str(tmp_path / "no-mirror"), "KERAS_ARCFACE_CACHE": str(tmp_path / "cache"),
            "KERAS_ARCFACE_OFFLINE": "1"}


def cli(env, *args, cwd):
    return subprocess.run([sys.executable, "-m", "keras_arcface.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def test_a_model_wheel_carries_the_card_its_files_and_an_entry_point(wheelhouse):
    name = "mobilefacenet-512"
    card, wheel = model_card(name), wheelhouse[name]
    assert wheel.name == f"keras_arcface_model_mobilefacenet_512-{card.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = {pathlib.PurePath(n).name: n for n in archive.namelist()}
        entry_points = archive.read(names["entry_points.txt"]).decode()
        metadata = archive.read(names["METADATA"]).decode()
        shipped_card = json.loads(archive.read(names["card.json"]))
    assert "[keras_arcface.models]" in entry_points
    assert f"{name} = keras_arcface_model_mobilefacenet_512" in entry_points
    assert f"Version: {card.version}" in metadata and "Requires-Dist: keras-arcface" in metadata
    assert shipped_card == card.to_dict()
    runtime_file = card.artifact("tflite_float16").file
    assert {runtime_file, f"{runtime_file}.json", card.config.file} <= set(names)
    left_out = {card.artifact(fmt).file for fmt in card.artifacts if fmt != "tflite_float16"}
    assert not left_out & set(names), "the packer carries only the formats asked for"


def test_the_package_version_follows_the_card(tmp_path, monkeypatch):
    cards = tmp_path / "cards"
    shutil.copytree(ROOT / "zoo", cards, ignore=shutil.ignore_patterns("checks"))
    data = json.loads((cards / "mobilefacenet-192.json").read_text())
    data["version"] = "2.1.0"
    (cards / "mobilefacenet-192.json").write_text(json.dumps(data))
    monkeypatch.setenv("KERAS_ARCFACE_ZOO_CARDS", str(cards))
    wheel = pack("mobilefacenet-192", tmp_path / "dist", formats=["tflite_float16"])
    assert wheel.name == "keras_arcface_model_mobilefacenet_192-2.1.0-py3-none-any.whl"


def test_installed_packages_serve_verify_by_name_and_zoo_list_says_so(site, tmp_path):
    env = isolated_env(site, tmp_path)
    listing = cli(env, "zoo", "list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout
    for name in PACKED:
        block = text.split(f"\n{name}\n")[1].split("\n\n")[0] if f"\n{name}\n" in text else ""
        runtime = model_card(name).runtime_format()
        line = next(line for line in block.splitlines() if line.strip().startswith(runtime))
        assert f"installed: {distribution_name(name)} {model_card(name).version}" in line, line
        assert str(site) in line
    assert "sface" in text and f"pip install {distribution_name('sface')}" in text  # what makes it available
    a, b = DEMO_FACES / "Grace_Hopper" / "Grace_Hopper_0001.jpg", DEMO_FACES / "Grace_Hopper" / "Grace_Hopper_0003.jpg"
    for name in PACKED:
        result = cli(env, "verify", a, b, "--model", name, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["model"] == f"{name}:tflite_float16"
    missing = cli(env, "verify", a, b, "--model", "sface", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"pip install {distribution_name('sface')}" in missing.stderr and "--url" in missing.stderr
    assert "urls=" not in missing.stderr, "the command line names its flags, not Python's arguments"


def test_installed_packages_serve_embed_identify_and_the_python_api(site, tmp_path):
    env = isolated_env(site, tmp_path)
    name = "mobilefacenet-192"
    for person, number in (("Grace_Hopper", 1), ("Eileen_Collins", 1)):
        write_image(tmp_path / "people" / person / "1.jpg", photo_of([demo_face(person, number)]))
    write_image(tmp_path / "query.jpg", photo_of([demo_face("Grace_Hopper", 3)]))
    embedded = cli(env, "embed", DEMO_FACES / "Grace_Hopper", "--model", name, "-o", "e.npy", cwd=tmp_path)
    assert embedded.returncode == 0, embedded.stderr
    index = cli(env, "index", "people", "-o", "gallery.npz", "--model", name, cwd=tmp_path)
    assert index.returncode == 0, index.stderr
    found = cli(env, "identify", "query.jpg", "--gallery", "gallery.npz", "--json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["matches"][0]["identity"] == "Grace_Hopper"
    script = (f"from keras_arcface import FaceVerifier\nv = FaceVerifier({name!r})\n"
              f"r = v.verify({str(DEMO_FACES / 'Eileen_Collins' / 'Eileen_Collins_0001.jpg')!r}, "
              f"{str(DEMO_FACES / 'Eileen_Collins' / 'Eileen_Collins_0004.jpg')!r})\n"
              "print(r.same, v.embedder.reference.source, v.embedder.reference.path)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    same, source, path = result.stdout.split()
    assert same == "True" and source == "installed" and path.startswith(str(site))


def test_an_installed_file_that_does_not_match_the_card_is_not_used(site, tmp_path, monkeypatch):
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    monkeypatch.syspath_prepend(str(copy))
    name = "mobilefacenet-512"
    artifact = model_card(name).artifact("tflite_float16")
    assert locate(name, artifact, urls=[], cache_dir=tmp_path / "cache").source == "installed"
    damaged = installed_models()[name].file(artifact.file)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    where = locate(name, artifact, urls=[], cache_dir=tmp_path / "cache")
    assert where.source == "not available" and "another version than this card's sha256" in where.cli_hint
    left_out = locate(name, model_card(name).artifact("onnx"), urls=[], cache_dir=tmp_path / "cache")
    assert "was packed without" in left_out.cli_hint


def test_a_package_of_a_model_the_library_does_not_know_brings_its_card(tmp_path, monkeypatch):
    """A model published after this release: its package's card makes it a zoo name."""
    card = model_card("mobilefacenet-192").to_dict()
    card["name"] = "newface"
    module = tmp_path / "keras_arcface_model_newface"
    module.mkdir()
    (module / "__init__.py").write_text("")
    (module / "card.json").write_text(json.dumps(card))
    info = tmp_path / "keras_arcface_model_newface-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: keras-arcface-model-newface\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[keras_arcface.models]\nnewface = keras_arcface_model_newface\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "newface" in list_models() and model_card("newface").name == "newface"
    assert installed_models()["newface"].version == "1.0.0"
