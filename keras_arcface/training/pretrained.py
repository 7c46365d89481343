"""Fine-tuning from pretrained weights: ``TrainConfig.init_from`` (a zoo name, a ``.weights.h5`` file,
or a run / converted-model folder), BatchNorm statistics kept frozen, head-only first epochs."""

import dataclasses
import json
import pathlib

import keras
import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.files import BACKBONE_WEIGHTS, CONFIG_FILE
from keras_arcface.runtime import InputSpec
from keras_arcface.runtime.embedder import DEFAULT_SPEC


def _initial_spec(recorded, source):
    """The normalisation a run starting from ``source`` trains with: the one ``source`` was trained on."""
    if recorded is None:
        return DEFAULT_SPEC
    spec = InputSpec(**recorded)
    if spec.layout != "NHWC":
        raise InputError(f"init_from {source}: the model takes {spec.layout} input; Keras backbones take NHWC")
    return spec


def training_spec(config):
    """The :class:`~keras_arcface.runtime.InputSpec` a run's batches, imprinting and saved model use:
    ``config.input_spec`` (recorded from ``init_from``) or the default (x - 127.5) / 128."""
    spec = InputSpec(**config.input_spec) if config.input_spec else DEFAULT_SPEC
    return dataclasses.replace(spec, size=(config.image_size, config.image_size))


def adopt_initial_spec(config, source):
    """Set ``config.input_spec`` to the normalisation of ``source`` (``init_from`` resolved by
    :func:`initial_source`; None: the default) when it is not the default: a model trained on
    (x - 127) / 128 is fine-tuned on (x - 127) / 128, and the run records it, so that evaluation and
    export feed it the same."""
    spec = _initial_spec(source.spec, source.name) if source is not None else DEFAULT_SPEC
    normalisation = (spec.layout, spec.colour, spec.mean, spec.std)
    config.input_spec = (None if normalisation == (DEFAULT_SPEC.layout, DEFAULT_SPEC.colour, DEFAULT_SPEC.mean,
                                                   DEFAULT_SPEC.std)
                         else {**spec.to_dict(), "size": [config.image_size, config.image_size]})


@dataclasses.dataclass
class _InitialSource:
    kind: str       # "folder", "file" or "zoo"
    name: object    # how messages name it
    recorded: dict  # its config.json (None for a bare weights file)
    spec: dict      # the input_spec it records (None: the default)


def initial_source(init_from, **zoo_options):
    """What ``init_from`` is, checked: a run / converted-model folder, a ``.weights.h5`` file or a zoo name."""
    path = pathlib.Path(init_from)
    if path.is_dir():
        recorded = json.loads((path / CONFIG_FILE).read_text()) if (path / CONFIG_FILE).is_file() else None
        if recorded is None or not (path / BACKBONE_WEIGHTS).is_file():
            raise InputError(f"init_from {path}: a folder needs config.json and backbone.weights.h5 (a training "
                             "run or `keras-arcface convert` output)")
        return _InitialSource("folder", path, recorded, recorded.get("input_spec"))
    if path.is_file():
        if not path.name.endswith(".weights.h5"):
            raise InputError(f"init_from {path}: expected a .weights.h5 file, a folder or a zoo name")
        return _InitialSource("file", path, None, None)
    from keras_arcface.zoo import fetch_artifact, list_models, model_card

    if init_from not in list_models(include_examples=True):
        raise InputError(f"init_from {init_from!r} is neither a file, a folder nor a zoo model "
                         f"({', '.join(list_models())})")
    card = model_card(init_from)  # checked through its hashed config.json, as a folder is
    recorded = json.loads(pathlib.Path(fetch_artifact(card.name, card.config, **zoo_options)).read_text())
    return _InitialSource("zoo", init_from, recorded, recorded.get("input_spec") or card.input_spec)


def _describe(config):
    return (f"{config.get('backbone')} {config.get('backbone_params') or {}} "
            f"{config.get('embedding_size')}-d at {config.get('image_size', DEFAULT_SPEC.size[0])} px")


def _check_architecture(source_config, config, source):
    wanted = {"backbone": config.backbone, "backbone_params": dict(config.backbone_params),
              "embedding_size": config.embedding_size, "image_size": config.image_size}
    found = {key: source_config.get(key, DEFAULT_SPEC.size[0] if key == "image_size" else None) for key in wanted}
    found["backbone_params"] = dict(found["backbone_params"] or {})
    if found != wanted:
        raise InputError(f"init_from {source} holds a {_describe(found)} backbone, the run builds a "
                         f"{_describe(wanted)} one: set the same backbone, backbone_params and embedding_size")


def resolve_initial_weights(source, config, **zoo_options):
    """The ``.weights.h5`` file of ``source`` (``init_from`` resolved by :func:`initial_source`) after
    checking that it fits ``config``'s backbone: a zoo name (downloaded and verified through the zoo),
    a run or converted-model folder (its ``backbone.weights.h5``), or a weights file (its shapes are
    checked when loaded)."""
    if source.recorded is not None:
        _check_architecture(source.recorded, config, source.name)
    _initial_spec(source.spec, source.name)
    if source.kind == "folder":
        return source.name / BACKBONE_WEIGHTS
    if source.kind == "file":
        return source.name
    from keras_arcface.zoo import download

    return download(source.name, "keras", **zoo_options)


def load_initial_weights(backbone, weights_file):
    """Load ``weights_file`` into ``backbone``; a shape mismatch names the file."""
    try:
        backbone.load_weights(weights_file)
    except ValueError as error:
        raise InputError(f"init_from {weights_file} does not fit the {backbone.name} backbone: {error}") from None


def class_centres(backbone, images, labels, num_classes, batch_size=128, spec=None):
    """The normalised mean embedding of each class, (num_classes, d) float32: the backbone in
    inference mode on ``spec``'s normalisation (default: keras-arcface's, at the images' size)."""
    spec = spec or dataclasses.replace(DEFAULT_SPEC, size=tuple(images.shape[1:3]))
    sums = None
    for start in range(0, len(images), batch_size):
        embeddings = backbone(spec.prepare(images[start:start + batch_size]), training=False)
        batch = keras.ops.convert_to_numpy(embeddings).astype(np.float64)
        batch /= np.maximum(np.linalg.norm(batch, axis=1, keepdims=True), 1e-12)
        sums = np.zeros((num_classes, batch.shape[1])) if sums is None else sums
        np.add.at(sums, np.asarray(labels[start:start + batch_size]), batch)
    empty = np.flatnonzero(~sums.any(axis=1))
    if len(empty):
        raise InputError(f"cannot imprint the head: class {int(empty[0])} has no training image")
    return (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)


def imprint_head(head, centres):
    """Start a cosine head's class centres at the pretrained backbone's class means (weight
    imprinting, Qi et al., CVPR 2018): the first gradients reaching the backbone then come from
    sensible centres instead of random ones.  Sub-centres all start at their class's mean."""
    from keras_arcface.heads import SoftmaxLayer

    if isinstance(head, SoftmaxLayer):
        raise InputError("init_head='imprint' needs a head with normalised class centres; the softmax head's "
                         "logits depend on their norms (use normface, cosface, arcface, ...)")
    columns = head.kernel.shape[1]
    repeats = getattr(head, "subcenters", 1)
    kernel = np.repeat(centres, repeats, axis=0).T  # class j's sub-centres are columns j K ... j K + K - 1
    if kernel.shape[1] < columns:  # Partial FC pads its kernel to a multiple of the shard count
        kernel = np.concatenate([kernel, np.asarray(head.kernel)[:, kernel.shape[1]:]], axis=1)
    head.kernel.assign(kernel.astype(head.kernel.dtype))


def freeze_batch_norm(backbone):
    """Keep every BatchNorm of ``backbone`` in inference mode with fixed scale and offset."""
    for layer in backbone._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


class HeadOnlyEpochs(keras.callbacks.Callback):
    """Train only the head (and distillation projection) for the first ``epochs`` epochs, then the
    whole model: the backbone's ``trainable`` flag is set at each epoch start (so a resumed run gets
    the right phase) and the train step is retraced when it changes.  The optimizer is built for all
    variables up front, so its state for the backbone starts at the switch.  ``keep_batchnorm_frozen``:
    BatchNorm stays frozen when the backbone is released (setting ``trainable`` on a model sets it
    on every layer inside)."""

    def __init__(self, backbone, epochs, keep_batchnorm_frozen=False):
        super().__init__()
        self.backbone, self.epochs = backbone, int(epochs)
        self.keep_batchnorm_frozen = bool(keep_batchnorm_frozen)

    def on_epoch_begin(self, epoch, logs=None):
        wanted = epoch >= self.epochs
        if self.backbone.trainable != wanted:
            self.backbone.trainable = wanted
            if wanted and self.keep_batchnorm_frozen:
                freeze_batch_norm(self.backbone)
            self.model.make_train_function(force=True)

