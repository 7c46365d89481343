"""``keras-arcface zoo pack``: the wheel of a zoo model (see :mod:`keras_arcface.zoo.packages`)."""

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

from keras_arcface.errors import InputError
from keras_arcface.zoo.download import fetch_artifact
from keras_arcface.zoo.load import model_card, write_sidecar
from keras_arcface.zoo.packages import CARD_FILE, ENTRY_POINT_GROUP, distribution_name, module_name


def _package_readme(card, distribution, formats):
    return (f"# {distribution}\n\nThe `{card.name}` model of the keras-arcface zoo, as a Python package: "
            f"install it and use it by name (`keras-arcface verify a.jpg b.jpg --model {card.name}`, "
            f"`FaceVerifier('{card.name}')`).\n\n{card.summary}\n\n"
            f"- formats: {', '.join(formats)}\n- weights licence: {card.licence.get('weights', 'not stated')}\n"
            f"- commercial use: {'allowed by the stated licences' if card.commercial_use else 'no'}\n")


def pack(name, output_dir, formats=None, **zoo_options):
    """Build the wheel of zoo model ``name`` into ``output_dir`` and return its path.  ``formats``: the
    artifacts to carry (default all the card lists); each file comes through the zoo's resolver (checked
    against the card), so a checkout, the cache or a mirror can feed it.  Needs setuptools (the ``dev``
    extra) and pip: the wheel is built by ``pip wheel`` from a generated ``pyproject.toml``."""
    card = model_card(name)
    formats = list(formats or card.artifacts)
    for fmt in formats:
        card.artifact(fmt)  # an unknown format is named before anything is copied
    if importlib.util.find_spec("setuptools") is None:
        raise InputError("packing a model builds a wheel with setuptools, which is not installed: pip install "
                         "setuptools (or 'keras-arcface[dev]')")
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    distribution, module = distribution_name(card.name), module_name(card.name)
    with tempfile.TemporaryDirectory(prefix="keras-arcface-pack-") as work:
        work = pathlib.Path(work)
        package = work / module
        package.mkdir()
        (package / "__init__.py").write_text(
            f'"""The {card.name} model of the keras-arcface zoo (card.json and its files); found by the zoo through '
            f'the entry point group {ENTRY_POINT_GROUP}."""\n')
        (package / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=1) + "\n")
        shutil.copyfile(fetch_artifact(card.name, card.config, **zoo_options), package / card.config.file)
        for fmt in formats:
            target = package / card.artifact(fmt).file
            shutil.copyfile(fetch_artifact(card.name, card.artifact(fmt), **zoo_options), target)
            if fmt != "keras":
                write_sidecar(card, fmt, target)
        (work / "README.md").write_text(_package_readme(card, distribution, formats))
        (work / "pyproject.toml").write_text(_pyproject(card, distribution, module))
        built = work / "dist"
        result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                                 "--disable-pip-version-check", "-q", "-w", str(built), str(work)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise InputError(f"pip wheel failed for {distribution}: {result.stderr.strip()[-800:]}")
        wheel = next(built.glob("*.whl"))
        target = output_dir / wheel.name
        shutil.move(str(wheel), target)
    return target


def _pyproject(card, distribution, module):
    from keras_arcface import __version__

    toml_string = json.dumps  # a JSON string is a valid TOML basic string for these texts
    licence = str(card.licence.get("weights", "see card.json"))
    return "\n".join([
        "[build-system]", 'requires = ["setuptools>=61"]', 'build-backend = "setuptools.build_meta"', "",
        "[project]", f"name = {toml_string(distribution)}", f"version = {toml_string(card.version)}",
        f"description = {toml_string(f'keras-arcface zoo model {card.name}: {card.summary}'[:300])}",
        'readme = "README.md"', 'requires-python = ">=3.10"',
        f"license = {{text = {toml_string(licence)}}}",
        f'dependencies = ["keras-arcface>={__version__}"]', "",
        f'[project.entry-points."{ENTRY_POINT_GROUP}"]', f"{toml_string(card.name)} = {toml_string(module)}", "",
        "[tool.setuptools]", f"packages = [{toml_string(module)}]", "",
        "[tool.setuptools.package-data]", f'{module} = ["*"]', ""])
