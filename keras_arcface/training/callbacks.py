"""Callbacks of the training entry point: per-epoch checkpoints, the resume backup, the NaN guard."""

import math
import pathlib

import keras


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
