"""Knowledge distillation from an exported teacher model (.onnx / .tflite) as an extra loss term.

The teacher runs once, before training, through the runtime (onnxruntime / LiteRT), on every
training image and on its mirror image; its L2-normalised embeddings become a third model input,
and :class:`EmbeddingDistillation` adds ``weight * mean(1 - cos(P s, t))`` to the loss, where s
is the student embedding, t the teacher's and P a learned bias-free linear map from the
student's size to the teacher's (the identity when the sizes match).  Licences: the teacher's
weights must allow it (SFace, for one, is Apache-2.0); say so in the model card.
"""

import hashlib
import pathlib

import keras
import numpy as np
from keras import ops

from keras_arcface.errors import InputError
from keras_arcface.heads.base import l2_normalize_rows


@keras.saving.register_keras_serializable(package="keras_arcface")
class EmbeddingDistillation(keras.layers.Layer):
    """[student (B, d_s), teacher (B, d_t)] -> student, unchanged; in training adds
    ``weight * mean(1 - cos(P student, teacher))`` to the model's losses (float32)."""

    def __init__(self, teacher_size, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.teacher_size = int(teacher_size)
        self.weight = float(weight)

    def build(self, input_shape):
        student_size = int(input_shape[0][-1])
        self.projection = None
        if student_size != self.teacher_size:
            self.projection = self.add_weight(name="projection", shape=(student_size, self.teacher_size),
                                              initializer="glorot_uniform")

    def distillation_loss(self, student, teacher):
        student = ops.cast(student, "float32")
        if self.projection is not None:
            student = ops.matmul(student, ops.cast(self.projection, "float32"))
        cosine = ops.sum(l2_normalize_rows(student) * l2_normalize_rows(ops.cast(teacher, "float32")), axis=-1)
        return self.weight * ops.mean(1.0 - cosine)

    def call(self, inputs, training=None):
        student, teacher = inputs
        if training:
            self.add_loss(self.distillation_loss(student, teacher))
        return student

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"teacher_size": self.teacher_size, "weight": self.weight})
        return config


def _fingerprint(teacher, paths):
    digest = hashlib.sha256(pathlib.Path(teacher).read_bytes())
    for path in paths:
        digest.update(str(path).encode())
    return digest.hexdigest()


def teacher_targets(teacher, folder, cache=None, batch_size=64):
    """(plain, mirrored) teacher embeddings (N, d_t) of every image of ``folder``, L2-normalised.

    ``teacher``: a .onnx / .tflite file (its input spec from the sidecar or the known names, see
    :func:`keras_arcface.runtime.spec_for`).  ``cache``: an .npz file reused while the teacher
    file and the image list are the same (a resumed run does not recompute).
    """
    from keras_arcface.data.images import read_image
    from keras_arcface.runtime import FaceEmbedder

    key = _fingerprint(teacher, folder.paths)
    if cache is not None and pathlib.Path(cache).is_file():
        stored = np.load(cache)
        if str(stored["key"]) == key:
            return stored["plain"], stored["mirrored"]
    embedder = FaceEmbedder(teacher)
    plain, mirrored = [], []
    for begin in range(0, len(folder.labels), batch_size):
        indices = np.arange(begin, min(begin + batch_size, len(folder.labels)))
        images = (folder.images[indices] if folder.images is not None
                  else np.stack([read_image(folder.paths[i]) for i in indices]))
        if tuple(images.shape[1:3]) != tuple(embedder.spec.size):
            raise InputError(f"the teacher {teacher} takes {embedder.spec.size} faces, the training images are "
                             f"{images.shape[1:3]}")
        plain.append(embedder.embed(images))
        mirrored.append(embedder.embed(np.ascontiguousarray(images[:, :, ::-1])))
    plain, mirrored = np.concatenate(plain), np.concatenate(mirrored)
    if cache is not None:
        np.savez(cache, plain=plain, mirrored=mirrored, key=key)
    return plain, mirrored

