"""Callbacks of the training entry point: per-epoch checkpoints, the resume backup, the run's per-epoch record,
the NaN guard."""

import json
import math
import pathlib

import keras

from keras_arcface.files import read_json_object, write_text_atomically


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; training stopped, the last good checkpoint is kept."""


class EpochCheckpoint(keras.callbacks.Callback):
    """Weights of the whole training model after every epoch: ``epoch-NNN.weights.h5``.

    Only epochs that ended with a finite loss are written, so the newest file is always a
    good one; the ``keep`` newest are kept.  ``placement``: the run's
    :class:`~keras_arcface.training.distribute.TrainingPlacement`, which writes (in a cluster only its
    chief does).
    """

    def __init__(self, directory, placement, keep=3):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.keep = int(keep)
        self.placement = placement

    def latest(self):
        files = sorted(self.directory.glob("epoch-*.weights.h5"))
        return files[-1] if files else None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        path = self.directory / f"epoch-{epoch + 1:03d}.weights.h5"
        self.placement.save_weights(self.model, path, save=self._write)

    def _write(self, path):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(path)
        for old in sorted(self.directory.glob("epoch-*.weights.h5"))[:-self.keep]:
            old.unlink()


class SharedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` for several workers sharing one backup folder: every worker restores from
    it, only the chief of ``placement`` (a :class:`~keras_arcface.training.distribute.TrainingPlacement`)
    writes it (Keras' callback would have every worker write the same files at once)."""

    def __init__(self, backup_dir, placement, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.placement = placement

    def _save_model(self):
        self.placement.save_weights(self.model, None, save=lambda _: super(SharedBackupAndRestore, self)._save_model())

    def on_train_end(self, logs=None):
        if self.placement.writes:
            super().on_train_end(logs)


def _plain(value):
    """A log value as JSON has it: an int stays an int (the ignored-label count), anything else a float."""
    value = value.item() if hasattr(value, "item") else value
    return value if isinstance(value, int) else float(value)


class EpochRecord(keras.callbacks.Callback):
    """The run's per-epoch record, whatever number of ``fit`` calls (resumes) it took: ``{metric: [one value
    per epoch]}`` (Keras' ``History`` layout, which keeps only its own call's epochs), written atomically to
    ``path`` at each epoch's end by the writer of ``placement``.

    Put it before the resume backup: an epoch is recorded before its backup is written, so a kill between the
    two makes the resumed run train that epoch again and record it again.  On resume the record is cut to the
    epochs before the first one this call trains (a backup torn by a kill resumes from the one before).
    An epoch an older version did not record stays ``null``.
    """

    def __init__(self, path, placement):
        super().__init__()
        self.path = pathlib.Path(path)
        self.placement = placement
        self.record = None

    def full_record(self, epochs):
        """The record of the run's first ``epochs`` epochs (this call's and the earlier calls')."""
        record = self.record if self.record is not None else read_json_object(self.path)
        return {name: list(values[:epochs]) for name, values in record.items()}

    def on_epoch_begin(self, epoch, logs=None):
        if self.record is None:  # the first epoch of this call: the earlier ones come from the file
            self.record = self.full_record(epoch)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            values = self.record.setdefault(name, [])
            values.extend([None] * (epoch + 1 - len(values)))
            values[epoch] = _plain(value)
        if self.placement.writes:
            write_text_atomically(self.path, json.dumps(self.record, indent=1))


class DataEpoch(keras.callbacks.Callback):
    """Sets every ``FaceBatches`` in ``batches`` to the epoch that begins, so epoch ``e``, resumed or not,
    reads permutation ``e`` whichever way ``fit`` reads the batches."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        for batches in self.batches:
            batches.set_epoch(epoch)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss with a message naming the last good checkpoint."""

    def __init__(self, checkpoints=None):
        super().__init__()
        self.checkpoints = checkpoints
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.model.stop_training = True
        latest = self.checkpoints.latest() if self.checkpoints else None
        raise TrainingDivergedError(
            f"training stopped: the loss is {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}. "
            f"Last good checkpoint: {latest or 'none (no epoch finished)'}. Lower the learning rate, "
            "lengthen the warm-up, or check the data.")
