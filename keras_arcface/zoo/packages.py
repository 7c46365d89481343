"""Zoo models as ordinary Python packages (the practice of spaCy's ``en_core_web_sm`` and
``face_recognition_models``): pip verifies, caches, mirrors and pins them.  This module finds the installed
ones; :mod:`keras_arcface.zoo.pack` builds them.

``keras-arcface zoo pack NAME -o dist/`` (:func:`~keras_arcface.zoo.pack.pack`) builds
``keras_arcface_model_<name>-<version>-py3-none-any.whl`` (distribution ``keras-arcface-model-<name>``, version =
the card's ``version``) holding the card (``card.json``), the model's ``config.json`` and the artifacts the card
lists (all formats, or those asked for), each .onnx / .tflite file with its sidecar.  The package declares itself
through the entry point group ``keras_arcface.models`` (name = the zoo name), so ``pip install
keras-arcface-model-<name>`` (from an index, a wheelhouse with ``--find-links``, offline too) is all it takes:
the zoo's resolver finds its files by name, checked against the card's sha256 like every other source.
Imports neither TensorFlow nor Keras.
"""

import dataclasses
import functools
import importlib.metadata
import importlib.util
import json
import pathlib
import re
import sys
import warnings

ENTRY_POINT_GROUP = "keras_arcface.models"
CARD_FILE = "card.json"


def distribution_name(model_name):
    """``keras-arcface-model-<name>``: the pip name of a model's package."""
    return f"keras-arcface-model-{model_name}"


def module_name(model_name):
    """``keras_arcface_model_<name>``: the import name of a model's package."""
    return "keras_arcface_model_" + re.sub(r"[^0-9a-zA-Z]+", "_", model_name).lower()


@dataclasses.dataclass(frozen=True)
class InstalledModel:
    """An installed model package: the zoo ``name`` it serves, its ``distribution`` and ``version``, and the
    ``folder`` that holds its card and files."""

    name: str
    distribution: str
    version: str
    folder: pathlib.Path

    def file(self, file_name):
        """The path of ``file_name`` in the package (it may not exist: a package can leave formats out)."""
        return self.folder / file_name

    def card(self):
        """The card the package was built from."""
        from keras_arcface.zoo.cards import ModelCard

        data = json.loads((self.folder / CARD_FILE).read_text())
        return ModelCard.from_data(data, self.folder / CARD_FILE)


def installed_models():
    """``{zoo name: InstalledModel}`` of the model packages installed in this environment (found through
    their entry points, without importing them); a broken entry point is skipped with a warning."""
    return dict(_installed_models(tuple(sys.path)))


@functools.lru_cache(maxsize=4)
def _installed_models(search_path):
    found = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = importlib.util.find_spec(entry.value)
            folder = pathlib.Path(spec.origin).parent if spec and spec.origin else None
        except (ImportError, ValueError):
            folder = None
        if folder is None or not (folder / CARD_FILE).is_file():
            warnings.warn(f"model package entry point {entry.name} = {entry.value} has no {CARD_FILE}; skipped",
                          stacklevel=3)
            continue
        dist = entry.dist
        found.setdefault(entry.name, InstalledModel(entry.name, dist.name if dist else entry.value,
                                                    dist.version if dist else "", folder))
    return tuple(found.items())
