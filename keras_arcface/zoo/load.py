"""The zoo's public functions: list, describe, download and load pretrained models by name."""

import pathlib

from keras_arcface.zoo.cards import CardError, read_cards
from keras_arcface.zoo.download import fetch_artifact


def list_models():
    """Names of the models with a card, sorted."""
    return sorted(read_cards())


def model_card(name):
    """The :class:`~keras_arcface.zoo.cards.ModelCard` of ``name``."""
    cards = read_cards()
    if name not in cards:
        raise CardError(f"unknown zoo model {name!r}; available: {sorted(cards)}")
    return cards[name]


def default_model():
    """The name of the card marked ``default`` (the demo's model)."""
    defaults = [name for name, card in read_cards().items() if card.default]
    if len(defaults) != 1:
        raise CardError(f"exactly one model card must be marked default, found {defaults}")
    return defaults[0]


def download(name, format="keras", **options):
    """Local, verified path of the ``format`` artifact of ``name`` (cached; see ``fetch_artifact``
    for ``urls``, ``cache_dir``, ``offline``, ``timeout``, ``progress``).  A cached .onnx / .tflite
    file gets a sidecar ``<file>.json`` with the card's input spec and thresholds, so the file
    alone (``verify --model PATH``) verifies like the zoo name."""
    card = model_card(name)
    path = fetch_artifact(card.name, card.artifact(format), **options)
    from keras_arcface.zoo.download import BUNDLED_DIR

    if format != "keras" and BUNDLED_DIR not in pathlib.Path(path).parents:
        write_sidecar(card, format, path)
    return path


def write_sidecar(card, fmt, path):
    """Write ``<path>.json`` (input spec, threshold, FAR thresholds) unless it already says the same;
    skipped where the folder is read-only (a package installed system-wide)."""
    import json

    from keras_arcface.files import write_text_atomically

    thresholds = card.thresholds(fmt)
    data = {"model": card.name, "format": fmt, "input_spec": card.input_spec, "threshold": thresholds["threshold"],
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
    """
    import json

    from keras_arcface.backbones import backbone_with_weights

    card = model_card(name)
    config = json.loads(pathlib.Path(fetch_artifact(card.name, card.config, **options)).read_text())
    return backbone_with_weights(config, download(name, "keras", **options), precision)


def load_model(name=None, format=None, spec=None, flip=False, **options):
    """A pretrained model behind the one embedding contract (aligned uint8 RGB faces in, unit
    vectors out, the card's thresholds attached): ``name`` defaults to the zoo's default model and
    ``format`` to the card's smallest artifact that passes its gates; ``format="keras"`` gives a
    :class:`~keras_arcface.runtime.KerasEmbedder` whose ``.model`` is the raw Keras model.  ``spec``
    overrides the card's input spec; ``flip`` embeds each face with its mirror image; ``options``
    (``urls``, ``cache_dir``, ``offline``) go to the download."""
    from keras_arcface.runtime import FaceEmbedder, InputSpec, KerasEmbedder, require_keras

    name = name or default_model()
    card = model_card(name)
    fmt = format or card.runtime_format() or "keras"
    card.artifact(fmt)  # an unknown format is named before anything is downloaded
    spec = spec if spec is not None else InputSpec(**card.input_spec)
    if fmt == "keras":
        require_keras(f"{name}:keras")
        embedder = KerasEmbedder(load_backbone(name, **options), spec=spec, flip=flip)
    else:
        embedder = FaceEmbedder(download(name, fmt, **options), spec=spec, flip=flip)
    thresholds = card.thresholds(fmt)
    embedder.threshold, embedder.threshold_source = thresholds["threshold"], thresholds["source"]
    embedder.far_thresholds = thresholds["far"]
    embedder.far_source = thresholds["far_source"]
    embedder.zoo_name, embedder.format = name, fmt
    return embedder
