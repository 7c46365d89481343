"""The zoo's public functions: list, describe, locate, download and load pretrained models by name."""

import pathlib
import warnings

from keras_arcface.zoo.cards import CardError, read_cards
from keras_arcface.zoo.download import BUNDLED_DIR, fetch_artifact, locate, source_of
from keras_arcface.zoo.packages import installed_models


class RecipeExampleWarning(UserWarning):
    """A model loaded by name is a training-recipe example, below the zoo's quality bar."""


def zoo_cards():
    """``{name: ModelCard}``: the cards installed with keras-arcface (or ``$KERAS_ARCFACE_ZOO_CARDS``), plus
    the cards of installed model packages for models those do not know.  Where both know a model, the
    library's card is the authority and the package is one more source of its files (checked against it)."""
    cards = read_cards()
    for name, package in installed_models().items():
        if name not in cards:
            cards[name] = package.card()
    return cards


def list_models(include_examples=False):
    """Names of the zoo's models, sorted: those a user should pick (``keras-arcface zoo list``), and with
    ``include_examples`` also the training-recipe examples (``zoo list --all``)."""
    return sorted(name for name, card in zoo_cards().items() if include_examples or not card.recipe_example)


def model_card(name):
    """The :class:`~keras_arcface.zoo.cards.ModelCard` of ``name``."""
    cards = zoo_cards()
    if name not in cards:
        raise CardError(f"unknown zoo model {name!r}; available: {list_models()} (and the training-recipe examples "
                        f"{sorted(set(cards) - set(list_models()))})")
    return cards[name]


def default_model():
    """The name of the card marked ``default`` (the demo's model)."""
    defaults = [name for name, card in read_cards().items() if card.default]
    if len(defaults) != 1:
        raise CardError(f"exactly one model card must be marked default, found {defaults}")
    return defaults[0]


def locations(name, **options):
    """``{format: Location}``: where each of ``name``'s files would come from now (bundled, installed,
    cached, mirror, not available; see :func:`keras_arcface.zoo.download.locate`), fetching nothing."""
    card = model_card(name)
    return {fmt: locate(card.name, artifact, **options) for fmt, artifact in card.artifacts.items()}


def warn_if_recipe_example(card, stacklevel=3):
    if card.recipe_example:
        warnings.warn(f"{card.name} is a training-recipe example ({card.lfw_summary()}), not a model to deploy: it "
                      "is below the zoo's quality bar (docs/zoo.md); keras-arcface zoo list shows the models to pick",
                      RecipeExampleWarning, stacklevel=stacklevel)


def download(name, format="keras", **options):
    """Local, verified path of the ``format`` artifact of ``name`` (bundled, installed, cached or downloaded;
    see ``fetch_artifact`` for ``urls``, ``cache_dir``, ``offline``, ``timeout``, ``progress``).  A cached
    .onnx / .tflite file gets a sidecar ``<file>.json`` with the card's input spec and thresholds, so the
    file alone (``verify --model PATH``) verifies like the zoo name (a model package carries its own)."""
    card = model_card(name)
    path = fetch_artifact(card.name, card.artifact(format), **options)
    if format != "keras" and BUNDLED_DIR not in pathlib.Path(path).parents:
        write_sidecar(card, format, path)
    return path


def write_sidecar(card, fmt, path):
    """Write ``<path>.json`` (input spec, threshold, FAR thresholds, licence) unless it already says the same;
    skipped where the folder is read-only (a package installed system-wide)."""
    import json

    from keras_arcface.files import write_text_atomically

    thresholds = card.thresholds(fmt)
    data = {"model": card.name, "format": fmt, "input_spec": card.file_spec(fmt), "threshold": thresholds["threshold"],
            "threshold_source": thresholds["source"], "far_thresholds": thresholds["far"],
            "far_source": thresholds["far_source"]}
    sidecar = pathlib.Path(f"{path}.json")
    try:
        if not sidecar.is_file() or json.loads(sidecar.read_text()) != data:
            write_text_atomically(sidecar, json.dumps(data, indent=1))
    except (OSError, ValueError):
        pass


def load_backbone(name, precision="float32", **options):
    """The raw Keras embedding model of ``name`` (for training and fine-tuning: it wants the card's
    input preprocessing and returns unnormalised vectors), built under ``precision``.

    The backbone is rebuilt from the card's hashed ``config.json`` (as a training run's folder is) and
    only weights (``.weights.h5``, read with h5py) are loaded, so nothing executable comes from a file.
    Without Keras and its backend: an :class:`~keras_arcface.errors.InputError` naming the extra to install.
    """
    return _backbone_and_weights(name, precision, **options)[0]


def _backbone_and_weights(name, precision="float32", **options):
    """``(backbone, the verified weights file it was loaded from)`` of ``name`` (see :func:`load_backbone`)."""
    import json

    from keras_arcface.runtime import require_keras

    require_keras(f"{name}'s backbone")
    from keras_arcface.backbones import backbone_with_weights

    card = model_card(name)
    warn_if_recipe_example(card, stacklevel=4)
    config = json.loads(pathlib.Path(fetch_artifact(card.name, card.config, **options)).read_text())
    weights = download(name, "keras", **options)
    return backbone_with_weights(config, weights, precision), weights


def model_reference(card, fmt, path, spec=None):
    """The :class:`~keras_arcface.runtime.reference.ModelReference` of ``card``'s ``fmt`` artifact: its
    calibration from the card, and where the file in use (``path``) comes from."""
    from keras_arcface.runtime import InputSpec
    from keras_arcface.runtime.reference import ModelReference

    thresholds = card.thresholds(fmt)
    spec = spec if spec is not None else InputSpec(**card.file_spec(fmt))
    return ModelReference(name=card.name, format=fmt, spec=spec,
                          threshold=thresholds["threshold"], threshold_source=thresholds["source"],
                          far_thresholds=thresholds["far"], far_source=thresholds["far_source"],
                          licence=card.licence, source=source_of(card.name, path), path=str(path))


def load_model(name=None, format=None, spec=None, flip=False, **options):
    """A pretrained model behind the one embedding contract (aligned uint8 RGB faces in, unit
    vectors out, its :class:`~keras_arcface.runtime.reference.ModelReference` with the card's
    thresholds as ``.reference``): ``name`` defaults to the zoo's default model and ``format`` to
    the card's smallest artifact that passes its gates; ``format="keras"`` gives a
    :class:`~keras_arcface.runtime.KerasEmbedder` whose ``.model`` is the raw Keras model.  ``spec``
    overrides the card's input spec; ``flip`` embeds each face with its mirror image; ``options``
    (``urls``, ``cache_dir``, ``offline``) go to the download."""
    from keras_arcface.runtime import FaceEmbedder, KerasEmbedder, require_keras

    name = name or default_model()
    card = model_card(name)
    fmt = format or card.runtime_format() or "keras"
    card.artifact(fmt)  # an unknown format is named before anything is downloaded
    if fmt == "keras":
        require_keras(f"{name}:keras")
        model, weights = _backbone_and_weights(name, **options)  # it warns for a recipe example
        return KerasEmbedder(model, flip=flip, reference=model_reference(card, fmt, weights, spec))
    warn_if_recipe_example(card)
    path = download(name, fmt, **options)
    return FaceEmbedder(path, flip=flip, reference=model_reference(card, fmt, path, spec))
