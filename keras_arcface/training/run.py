"""The training entry point: ``train(config)`` and ``keras-arcface train``."""

import dataclasses
import importlib.util
import json
import pathlib
import sys
import time

import keras

from keras_arcface.data import FaceBatches, FaceFolder
from keras_arcface.data.augment import augmentation
from keras_arcface.dtypes import dtype_policy
from keras_arcface.errors import InputError
from keras_arcface.files import (
    BACKBONE_WEIGHTS,
    CONFIG_FILE,
    LABEL_MAP,
    TRAINING_WEIGHTS,
    atomic_path,
    read_json_object,
    write_text_atomically,
)
from keras_arcface.heads import IgnoredLabelRows
from keras_arcface.training.callbacks import (
    DataEpoch,
    EpochCheckpoint,
    EpochRecord,
    NaNGuard,
    SharedBackupAndRestore,
)
from keras_arcface.training.config import TrainConfig
from keras_arcface.training.distribute import TrainingPlacement, cluster_from_environment
from keras_arcface.training.lock import run_folder_lock
from keras_arcface.training.model import build_from_config, build_training_model, compile_for_training
from keras_arcface.training.optimizers import make_optimizer
from keras_arcface.training.pretrained import (
    HeadOnlyEpochs,
    adopt_initial_spec,
    class_centres,
    freeze_batch_norm,
    imprint_head,
    initial_source,
    load_initial_weights,
    resolve_initial_weights,
    training_spec,
)

#: The run's per-epoch record, kept in the backup while it trains; ``history.json`` is its copy when it ends.
EPOCH_RECORD = "backup/history.json"
HISTORY_FILE = "history.json"


@dataclasses.dataclass
class TrainResult:
    """``history``: every epoch of the run (``{metric: [per epoch]}``), whatever number of calls it took;
    ``epochs_run``: the epochs this call trained (0 for a run that was already complete); ``seconds`` and
    ``samples_per_second``: this call's."""

    output_dir: str
    history: dict
    seconds: float
    samples_per_second: float
    num_classes: int
    num_images: int
    epochs_run: int = 0


def load_faces(config):
    folders = [FaceFolder.scan(path, image_size=(config.image_size, config.image_size),
                               exclude=config.exclude_identities) for path in config.data_dirs]
    return folders[0] if len(folders) == 1 else FaceFolder.merge(folders)


def make_batches(config, faces, teacher=None, shard=(0, 1)):
    """The training batches of ``config``: flips, augmentation, seed, epoch cap; ``shard``: this
    worker's share of every batch (see :class:`~keras_arcface.data.FaceBatches`)."""
    augment = None if config.augment == "none" else augmentation(config.augment)
    return FaceBatches(faces, config.batch_size, flip=config.flip, seed=config.seed, teacher=teacher,
                       augment=augment, max_batches=config.max_steps_per_epoch, shard=shard,
                       spec=training_spec(config))


def steps_per_epoch(config, faces):
    """``len(make_batches(config, faces))``, without making the batches."""
    return FaceBatches.batches_per_epoch(len(faces.labels), config.batch_size, max_batches=config.max_steps_per_epoch)


def fit_verbosity(verbose):
    """``fit``'s verbosity: "auto" is a progress bar on a terminal and one line per epoch otherwise
    (a progress bar in a log file or a pipe is thousands of carriage returns)."""
    if verbose != "auto":
        return verbose
    return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2


def check_output_folder(output, config):
    """Refuse an output folder that holds another run's (or a converted model's) ``config.json``,
    naming the settings that differ; the same configuration resumes."""
    saved = output / CONFIG_FILE
    if not saved.is_file():
        return
    try:
        previous = json.loads(saved.read_text())
    except json.JSONDecodeError:
        message = f"{saved} is not valid JSON: remove it or choose another "
        raise InputError(message + "output_dir", message + "--output") from None
    if not isinstance(previous, dict) or "data_dirs" not in previous:
        message = f"{output} holds a model that is not a training run ({saved}); choose another "
        raise InputError(message + "output_dir", message + "--output")
    current = dataclasses.asdict(config)
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}

    def default(name):
        field = fields[name]
        if field.default is not dataclasses.MISSING:
            return field.default
        return None if field.default_factory is dataclasses.MISSING else field.default_factory()

    # A field added since the run was saved counts at its default; computed fields are not settings.
    ignored = {"teacher_embedding_size", "input_spec"}
    differing = [name for name in current if name not in ignored
                 and json.loads(json.dumps(previous.get(name, default(name)))) != json.loads(json.dumps(current[name]))]
    unknown = sorted(set(previous) - set(current))
    if differing or unknown:
        shown = "; ".join(f"{name}: {previous.get(name, default(name))!r} there, {current[name]!r} now"
                          for name in differing[:4])
        if unknown:
            shown += ("; " if shown else "") + f"settings this version does not know: {', '.join(unknown)}"
        message = (f"{output} holds a run with another configuration ({shown}); resume it with the same settings or "
                   "choose another ")
        raise InputError(message + "output_dir", message + "--output")


def build_run_model(config, faces, optimizer, starting_from=None, per_replica_xla=False, distill=True):
    """(backbone, head, compiled training model) of ``config``: the backbone from ``starting_from`` (a
    starting run's ``init_from``, resolved once by the caller with
    :func:`~keras_arcface.training.pretrained.initial_source`; None for a resumed run, which restores
    its own progress, or without ``init_from``) and the head imprinted from it when asked, BatchNorm
    frozen when asked, the distillation term when ``distill`` and a teacher is set.  Call it in the
    placement's scope."""
    initial_weights = resolve_initial_weights(starting_from, config) if starting_from is not None else None
    backbone, head = build_from_config(config, faces.num_classes)
    if initial_weights is not None:
        load_initial_weights(backbone, initial_weights)
    if config.freeze_batchnorm:
        freeze_batch_norm(backbone)
    teacher_size = config.teacher_embedding_size if distill else 0
    model = build_training_model(backbone, head, per_replica_xla=per_replica_xla, teacher_size=teacher_size,
                                 distill_weight=config.distill_weight)
    if config.init_head == "imprint" and starting_from is not None:
        imprint_head(head, class_centres(backbone, faces.images, faces.labels, faces.num_classes,
                                         spec=training_spec(config)))
    compile_for_training(model, optimizer, config.jit_compile,
                         config.classification_weight if teacher_size else 1.0)
    return backbone, head, model


def finished_epochs(output):
    """The number of epochs the backup of the run in ``output`` has finished (0 without one)."""
    metadata = read_json_object(pathlib.Path(output) / "backup" / "training_metadata.json")  # Keras' own file
    return int(metadata.get("epoch", 0) or 0)


def is_complete(output, config):
    """The run in ``output`` trained all ``config.epochs`` and wrote its final files."""
    output = pathlib.Path(output)
    return (finished_epochs(output) >= config.epochs
            and all((output / name).is_file() for name in (BACKBONE_WEIGHTS, TRAINING_WEIGHTS, HISTORY_FILE)))


def train(config, faces=None, verbose="auto", callbacks=()):
    """Train ``config.backbone`` with ``config.head`` on the face folders; resumable.

    Output directory: ``config.json``, ``label_map.json``, ``backup/`` (resume state, written
    every epoch), ``checkpoints/epoch-NNN.weights.h5``, and at the end ``backbone.weights.h5``
    (the embedding model), ``training_model.weights.h5`` (backbone and head), ``history.json``.  Run the
    same call again after a crash or kill and it continues from the last finished epoch (model,
    optimizer, SphereFace counter and epoch number restored by ``keras.callbacks.BackupAndRestore``;
    the epoch's batches are those an uninterrupted run reads); ``history.json`` then holds every epoch of
    the run, and a run that is already complete changes no file.  One run per folder: a second call on a
    folder a live process trains into raises :class:`~keras_arcface.training.lock.RunFolderBusyError` naming
    it.  In a cluster (``config.multi_worker``, docs/training.md) every worker makes this call with the same
    config and a shared ``output_dir``; worker 0 writes the files and holds the folder's lock.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig(**config)
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise InputError("tensorboard=True needs the tensorboard package: pip install tensorboard "
                         "(or keras-arcface[tensorboard])")
    output = pathlib.Path(config.output_dir)
    check_output_folder(output, config)
    complete = is_complete(output, config)
    # First, before any TensorFlow or JAX computation: joining a cluster must precede them.
    cluster = cluster_from_environment(config.multi_worker)
    if complete and cluster.workers == 1:  # the documented resume command of a finished run: touch nothing
        return _complete_result(output, faces if faces is not None else load_faces(config))
    with run_folder_lock(output, "train", cluster):
        return _train_holding_the_folder(config, faces, verbose, callbacks, output, cluster, complete)


def _complete_result(output, faces):
    history = json.loads((output / HISTORY_FILE).read_text())
    return TrainResult(str(output), history, 0.0, 0.0, faces.num_classes, len(faces.labels), epochs_run=0)


def _train_holding_the_folder(config, faces, verbose, callbacks, output, cluster, complete):
    shards = int(config.head_params.get("num_shards", 1)) if config.head == "partial_fc" else 0
    placement = TrainingPlacement(config.devices, cluster, partial_fc_shards=shards, batch_size=config.batch_size)
    writes = placement.writes  # in a cluster the workers share the output folder; the chief writes it
    faces = faces if faces is not None else load_faces(config)
    output.mkdir(parents=True, exist_ok=True)
    teacher = None
    if config.teacher:
        from keras_arcface.training.distill import teacher_targets

        teacher = teacher_targets(config.teacher, faces, cache=output / "teacher_embeddings.npz" if writes else None)
        config.teacher_embedding_size = int(teacher[0].shape[1])
    resuming = (output / "backup").exists()
    recorded = output / CONFIG_FILE
    # init_from, resolved and checked once (for the normalisation and the weights); a resumed run restores its own
    source = initial_source(config.init_from) if config.init_from and not (resuming and recorded.is_file()) else None
    if recorded.is_file():  # the normalisation the run started with
        config.input_spec = json.loads(recorded.read_text()).get("input_spec")
    else:  # before config.json: evaluation and export read the run's normalisation there
        adopt_initial_spec(config, source)
    if writes:
        write_text_atomically(output / CONFIG_FILE, config.to_json())
        faces.save_label_map(output / LABEL_MAP)
    keras.config.set_dtype_policy(config.precision)
    keras.utils.set_random_seed(config.seed)

    if len(set(placement.every_worker(resuming))) > 1:  # one worker would resume, another start afresh
        raise InputError(f"the workers disagree on resuming: some see a backup in {output / 'backup'}, some do not; "
                         "every worker needs the same output folder, on storage they all share")
    if len(set(placement.every_worker(complete))) > 1:
        raise InputError(f"the workers disagree on whether the run in {output} is complete: every worker needs the "
                         "same output folder, on storage they all share")
    if complete:  # every worker of the cluster, together: the chief rewrote config.json and the label map unchanged
        return _complete_result(output, faces)
    steps = steps_per_epoch(config, faces)
    made = []  # every FaceBatches fit reads from (one per input pipeline), for DataEpoch

    def batches_for(shard):
        made.append(make_batches(config, faces, teacher=teacher, shard=shard))
        return made[-1]

    batches = placement.training_input(batches_for, config.batch_size)

    per_replica_xla = (config.jit_compile and placement.replicas > 1
                       and keras.backend.backend() == "tensorflow")
    if config.head_only_epochs and keras.backend.backend() != "tensorflow":
        raise InputError("head_only_epochs needs the TensorFlow backend: Keras' JAX trainer fixes the trainable "
                         "variables for a whole fit() call; use freeze_batchnorm and a low learning rate instead")
    with placement.scope():
        backbone, head, model = build_run_model(config, faces, make_optimizer(config, steps),
                                                starting_from=None if resuming else source,
                                                per_replica_xla=per_replica_xla)
    if config.head_only_epochs:
        callbacks = [HeadOnlyEpochs(backbone, config.head_only_epochs, config.freeze_batchnorm), *callbacks]

    checkpoints = EpochCheckpoint(output / "checkpoints", placement, keep=config.keep_checkpoints)
    # double_checkpoint: a kill while the backup is being written leaves the previous one to
    # resume from (the newest file fails to open and Keras falls back).
    backup = SharedBackupAndRestore(str(output / "backup"), placement, delete_checkpoint=False, double_checkpoint=True)
    # The record after IgnoredLabelRows (it adds its count to the logs) and before the backup (see EpochRecord).
    record = EpochRecord(output / EPOCH_RECORD, placement)
    all_callbacks = [IgnoredLabelRows(), record, backup, DataEpoch(made), checkpoints, NaNGuard(checkpoints),
                     *callbacks]
    if config.tensorboard and writes:
        all_callbacks.append(keras.callbacks.TensorBoard(str(output / "tensorboard")))
    start = time.perf_counter()
    # shuffle=False: FaceBatches shuffles the images each epoch from the seed; Keras' own shuffle of the
    # batch order would draw from the global RNG, and one process' order would differ from a cluster's.
    history = model.fit(batches, epochs=config.epochs, callbacks=all_callbacks, verbose=fit_verbosity(verbose),
                        shuffle=False)
    seconds = time.perf_counter() - start
    # Each final file appears complete or not at all (a kill mid-write leaves no half file).
    for saved, name in ((backbone, BACKBONE_WEIGHTS), (model, TRAINING_WEIGHTS)):
        placement.save_weights(saved, output / name, save=lambda path, saved=saved: _save_atomically(saved, path))
    full = record.full_record(config.epochs)
    if writes:
        write_text_atomically(output / HISTORY_FILE, json.dumps(full, indent=1))
    epochs_run = len(history.history.get("loss", []))
    samples = epochs_run * steps * config.batch_size
    return TrainResult(str(output), full, seconds, samples / seconds if samples else 0.0,
                       faces.num_classes, len(faces.labels), epochs_run=epochs_run)


def _save_atomically(model, path):
    with atomic_path(path) as temporary:
        model.save_weights(temporary)


def _run_config(output):
    return (TrainConfig.load(output / CONFIG_FILE),
            json.loads((output / LABEL_MAP).read_text()))


def load_trained(output_dir, precision="float32"):
    """(backbone, head, config, label_map) of a finished run, rebuilt under ``precision``."""
    output = pathlib.Path(output_dir)
    config, label_map = _run_config(output)
    with dtype_policy(precision):
        backbone, head = build_from_config(config, len(label_map))
        build_training_model(backbone, head, teacher_size=config.teacher_embedding_size,
                             distill_weight=config.distill_weight).load_weights(output / TRAINING_WEIGHTS)
    return backbone, head, config, label_map
