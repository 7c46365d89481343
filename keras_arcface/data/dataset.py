"""Batches of faces for ``model.fit``: a ``keras.utils.PyDataset`` (no TensorFlow needed)."""

import math

import keras
import numpy as np

from keras_arcface.data.images import preprocess, read_image


class FaceBatches(keras.utils.PyDataset):
    """Shuffled batches ``((images, labels), labels)`` with random horizontal flips.

    Deterministic for a seed: epoch e uses permutation ``default_rng((seed, e))`` and batch b
    flips with ``default_rng((seed, e, b))``, whatever the worker order.  Images are taken from
    ``folder.images`` when present, else read from ``folder.paths``.  Incomplete last batches
    are dropped when ``drop_remainder`` (static shapes for XLA and even replica splits).
    ``teacher``: (plain, mirrored) teacher embeddings (N, d_t), for distillation: batches become
    ``((images, labels, teacher), labels)``, the mirrored row for a flipped image.
    ``augment``: a :class:`~keras_arcface.data.augment.FaceAugmentation` applied after the flip,
    drawn from ``default_rng((seed, e, b, 1))`` (teacher targets stay those of the clean image).
    ``max_batches`` > 0 caps an epoch at that many batches of the epoch's permutation (a cap in
    ``fit(steps_per_epoch=...)`` would not restart the PyDataset at the next epoch).
    ``spec``: an :class:`~keras_arcface.runtime.InputSpec` whose normalisation replaces the default
    (x - 127.5) / 128 (a run fine-tuning a model trained on another one).
    """

    def __init__(self, folder, batch_size, shuffle=True, flip=True, seed=0, drop_remainder=True,
                 start_epoch=0, labels_as_input=True, teacher=None, augment=None, max_batches=0,
                 shard=(0, 1), spec=None, **kwargs):
        super().__init__(**kwargs)
        self.batches_per_epoch(len(folder.labels), batch_size)  # checks the batch size
        self.folder = folder
        self.batch_size = int(batch_size)
        self.shuffle, self.flip, self.seed = bool(shuffle), bool(flip), int(seed)
        self.drop_remainder = bool(drop_remainder)
        self.labels_as_input = bool(labels_as_input)
        self.epoch = int(start_epoch)
        self.teacher = teacher
        self.augment = augment
        self.max_batches = int(max_batches)
        self.spec = spec
        self.shard_index, self.shard_count = (int(value) for value in shard)
        if not 0 <= self.shard_index < self.shard_count or self.batch_size % self.shard_count:
            raise ValueError(f"shard must be (index, count) with 0 <= index < count and count dividing the batch "
                             f"size {self.batch_size}, got {tuple(shard)}")
        if teacher is not None and not labels_as_input:
            raise ValueError("teacher targets are a model input: use labels_as_input=True")
        self._order = self._permutation()

    def _permutation(self):
        count = len(self.folder.labels)
        if not self.shuffle:
            return np.arange(count)
        return np.random.default_rng((self.seed, self.epoch)).permutation(count)

    @staticmethod
    def batches_per_epoch(count, batch_size, drop_remainder=True, max_batches=0):
        """How many batches an epoch of ``count`` images has (``len()`` of such batches), without making them."""
        if batch_size < 1 or batch_size > count:
            raise ValueError(f"batch_size must be in [1, {count}], got {batch_size}")
        batches = count // batch_size if drop_remainder else math.ceil(count / batch_size)
        return min(batches, max_batches) if max_batches > 0 else batches

    def __len__(self):
        return self.batches_per_epoch(len(self.folder.labels), self.batch_size, self.drop_remainder, self.max_batches)

    def batch_images(self, indices):
        if self.folder.images is not None:
            return self.folder.images[indices]
        return np.stack([read_image(self.folder.paths[i]) for i in indices])

    def __getitem__(self, index):
        in_batch = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        share = len(in_batch) // self.shard_count
        rows = slice(self.shard_index * share, (self.shard_index + 1) * share)  # this shard's
        indices = in_batch[rows]
        images = self.batch_images(indices)
        flips = np.zeros(len(indices), bool)
        if self.flip:
            flips = (np.random.default_rng((self.seed, self.epoch, index)).random(len(in_batch)) < 0.5)[rows]
            images = np.where(flips[:, None, None, None], images[:, :, ::-1], images)
        if self.augment is not None:
            key = (self.seed, self.epoch, index, 1) + ((self.shard_index,) if self.shard_count > 1 else ())
            images = self.augment(images, np.random.default_rng(key))
        x = preprocess(images) if self.spec is None else self.spec.normalize(images)
        y = self.folder.labels[indices]
        if self.teacher is not None:
            plain, mirrored = self.teacher
            return (x, y, np.where(flips[:, None], mirrored[indices], plain[indices])), y
        return ((x, y), y) if self.labels_as_input else (x, y)

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch):
        """Serve epoch ``epoch``'s batches from now on (its permutation)."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._order = self._permutation()
