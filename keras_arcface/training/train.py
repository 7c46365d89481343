"""The training entry point: ``train(config)`` and ``keras-arcface train``."""

import contextlib
import dataclasses
import importlib.util
import json
import pathlib
import time

import keras

from keras_arcface.data import FaceBatches, FaceFolder
from keras_arcface.data.augment import augmentation
from keras_arcface.training.callbacks import EpochCheckpoint, NaNGuard
from keras_arcface.training.config import TrainConfig
from keras_arcface.training.distribute import distribution_scope
from keras_arcface.training.model import build_from_config, build_training_model, compile_for_training
from keras_arcface.training.optimizers import make_optimizer
from keras_arcface.training.pretrained import (HeadOnlyEpochs, freeze_batch_norm, load_initial_weights,
                                               resolve_initial_weights)


@dataclasses.dataclass
class TrainResult:
    output_dir: str
    history: dict
    seconds: float
    samples_per_second: float
    num_classes: int
    num_images: int


def load_faces(config):
    folders = [FaceFolder.scan(path, image_size=(config.image_size, config.image_size),
                               exclude=config.exclude_identities) for path in config.data_dirs]
    return folders[0] if len(folders) == 1 else FaceFolder.merge(folders)


def make_batches(config, faces, teacher=None):
    """The training batches of ``config``: flips, augmentation, seed, epoch cap."""
    augment = None if config.augment == "none" else augmentation(config.augment)
    return FaceBatches(faces, config.batch_size, flip=config.flip, seed=config.seed, teacher=teacher,
                       augment=augment, max_batches=config.max_steps_per_epoch)


def train(config, faces=None, verbose="auto", callbacks=()):
    """Train ``config.backbone`` with ``config.head`` on the face folders; resumable.

    Output directory: ``config.json``, ``label_map.json``, ``backup/`` (resume state, written
    every epoch), ``checkpoints/epoch-NNN.weights.h5``, and at the end ``backbone.weights.h5``
    (the embedding model), ``training_model.weights.h5`` (backbone and head), ``history.json``.  Run the same call again after
    a crash or kill and it continues from the last finished epoch (model, optimizer, SphereFace
    counter and epoch number restored by ``keras.callbacks.BackupAndRestore``).
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig(**config)
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("tensorboard=True needs the tensorboard package: pip install tensorboard "
                         "(or keras-arcface[tensorboard])")
    output = pathlib.Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    faces = faces if faces is not None else load_faces(config)
    teacher = None
    if config.teacher:
        from keras_arcface.training.distill import teacher_targets

        teacher = teacher_targets(config.teacher, faces, cache=output / "teacher_embeddings.npz")
        config.teacher_embedding_size = int(teacher[0].shape[1])
    saved_config = output / "config.json"
    if saved_config.exists() and (output / "backup").exists():
        # Through TrainConfig, so that a field added since (at its default) still matches.
        previous = TrainConfig(**json.loads(saved_config.read_text()))
        if previous.to_json() != config.to_json():
            raise ValueError(f"{output} holds a run with another configuration; resume it with the "
                             "same settings or choose a new output directory")
    config.save(saved_config)
    keras.config.set_dtype_policy(config.precision)
    keras.utils.set_random_seed(config.seed)

    faces.save_label_map(output / "label_map.json")
    batches = make_batches(config, faces, teacher=teacher)
    steps_per_epoch = len(batches)

    per_replica_xla = (config.jit_compile and config.devices > 1
                       and keras.backend.backend() == "tensorflow")
    if config.head_only_epochs and keras.backend.backend() != "tensorflow":
        raise ValueError("head_only_epochs needs the TensorFlow backend: Keras' JAX trainer fixes the trainable "
                         "variables for a whole fit() call; use freeze_batchnorm and a low learning rate instead")
    resuming = (output / "backup").exists()
    initial_weights = resolve_initial_weights(config.init_from, config) if config.init_from else None
    with distribution_scope(config.devices):
        backbone, head = build_from_config(config, faces.num_classes)
        if initial_weights is not None and not resuming:  # a resumed run restores its own progress
            load_initial_weights(backbone, initial_weights)
        if config.freeze_batchnorm:
            freeze_batch_norm(backbone)
        model = build_training_model(backbone, head, per_replica_xla=per_replica_xla,
                                     teacher_size=config.teacher_embedding_size, distill_weight=config.distill_weight)
        compile_for_training(model, make_optimizer(config, steps_per_epoch), config.jit_compile)
    if config.head_only_epochs:
        callbacks = [HeadOnlyEpochs(backbone, config.head_only_epochs, config.freeze_batchnorm), *callbacks]

    checkpoints = EpochCheckpoint(output / "checkpoints", keep=config.keep_checkpoints)
    # double_checkpoint: a kill while the backup is being written leaves the previous one to
    # resume from (the newest file fails to open and Keras falls back).
    all_callbacks = [keras.callbacks.BackupAndRestore(str(output / "backup"), delete_checkpoint=False,
                                                      double_checkpoint=True),
                     checkpoints, NaNGuard(checkpoints), *callbacks]
    if config.tensorboard:
        all_callbacks.append(keras.callbacks.TensorBoard(str(output / "tensorboard")))
    start = time.perf_counter()
    history = model.fit(batches, epochs=config.epochs, callbacks=all_callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    backbone.save_weights(output / "backbone.weights.h5")
    model.save_weights(output / "training_model.weights.h5")
    (output / "history.json").write_text(json.dumps(history.history, indent=1))
    samples = len(history.history.get("loss", [])) * steps_per_epoch * config.batch_size
    return TrainResult(str(output), history.history, seconds, samples / seconds if samples else 0.0,
                       faces.num_classes, len(faces.labels))


@contextlib.contextmanager
def _dtype_policy(precision):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _run_config(output):
    return (TrainConfig.load(output / "config.json"),
            json.loads((output / "label_map.json").read_text()))


def load_trained(output_dir, precision="float32"):
    """(backbone, head, config, label_map) of a finished run, rebuilt under ``precision``."""
    output = pathlib.Path(output_dir)
    config, label_map = _run_config(output)
    with _dtype_policy(precision):
        backbone, head = build_from_config(config, len(label_map))
        build_training_model(backbone, head, teacher_size=config.teacher_embedding_size,
                             distill_weight=config.distill_weight).load_weights(output / "training_model.weights.h5")
    return backbone, head, config, label_map


def is_run_config(data):
    """True for a training run's ``config.json``, False for a converted model's (no training data)."""
    return "data_dirs" in data


def load_backbone(output_dir, precision="float32"):
    """The embedding model of a run or a converted model's folder, rebuilt under ``precision``:
    ``backbone.weights.h5`` when present (all a zoo folder ships), else the backbone of
    ``training_model.weights.h5``."""
    from keras_arcface.backbones import backbone_from_config

    output = pathlib.Path(output_dir)
    data = json.loads((output / "config.json").read_text())
    if is_run_config(data) and not (output / "backbone.weights.h5").is_file():
        return load_trained(output, precision)[0]
    with _dtype_policy(precision):
        backbone = backbone_from_config(dataclasses.asdict(TrainConfig(**data)) if is_run_config(data) else data)
        backbone.load_weights(output / "backbone.weights.h5")
    return backbone
