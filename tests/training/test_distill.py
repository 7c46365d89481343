"""Distillation from an exported teacher: the loss term, the targets, and a training run."""

import json
import pathlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.data import FaceBatches, FaceFolder
from keras_arcface.training import TrainConfig, load_trained, train
from keras_arcface.training.distill import EmbeddingDistillation, teacher_targets
from tests.faces import make_face_folder


def _l2(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("student_size", [8, 5], ids=["same-size", "projected"])
def test_the_term_is_weight_times_one_minus_cosine(student_size, rng):
    layer = EmbeddingDistillation(8, weight=2.5)
    student = rng.standard_normal((6, student_size)).astype("float32")
    teacher = rng.standard_normal((6, 8)).astype("float32")
    out = layer([student, teacher], training=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), student)  # passes the student through
    projected = student if student_size == 8 else student @ ops.convert_to_numpy(layer.projection)
    want = 2.5 * np.mean(1 - np.sum(_l2(projected) * _l2(teacher), axis=1))
    assert float(ops.convert_to_numpy(layer.losses[0])) == pytest.approx(want, rel=1e-5)
    assert (layer.projection is None) == (student_size == 8)
    layer([student, teacher])  # not training: no term
    restored = EmbeddingDistillation.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()


def _teacher_file(tmp_path, size=32, dim=8):
    """A tiny exported teacher (.tflite) with its sidecar input spec."""
    from keras_arcface.export.formats import write_tflite

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(4, 3, strides=4),
                              keras.layers.Flatten(), keras.layers.Dense(dim)])
    path = tmp_path / "teacher.tflite"
    write_tflite(model, path, "float32")
    pathlib.Path(str(path) + ".json").write_text(json.dumps({"input_spec": {"size": [size, size]}}))
    return path


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the test teacher is exported with TensorFlow")
def test_targets_follow_the_flip_and_training_pulls_the_student_to_the_teacher(tmp_path):
    faces_dir = make_face_folder(tmp_path / "faces", identities=4, per_identity=8, size=32)
    teacher = _teacher_file(tmp_path)
    folder = FaceFolder.scan(faces_dir, image_size=(32, 32))
    plain, mirrored = teacher_targets(teacher, folder, cache=tmp_path / "t.npz")
    assert plain.shape == (32, 8) and np.allclose(np.linalg.norm(plain, axis=1), 1, atol=1e-5)
    again = teacher_targets(teacher, folder, cache=tmp_path / "t.npz")  # from the cache
    np.testing.assert_array_equal(again[0], plain)
    (x, y, t), _ = FaceBatches(folder, 8, flip=True, seed=3, teacher=(plain, mirrored))[0]
    indices = FaceBatches(folder, 8, flip=True, seed=3)._order[:8]
    flips = np.random.default_rng((3, 0, 0)).random(8) < 0.5
    np.testing.assert_array_equal(t, np.where(flips[:, None], mirrored[indices], plain[indices]))

    config = TrainConfig(data_dirs=[str(faces_dir)], output_dir=str(tmp_path / "run"), epochs=3, batch_size=8,
                         learning_rate=0.05, warmup_epochs=0.5, backbone="iresnet18",
                         backbone_params={"stage_depths": [1, 1, 1, 1], "base_width": 8}, embedding_size=16,
                         image_size=32, head="arcface", head_params={"scale": 16.0, "margin": 0.2},
                         teacher=str(teacher), distill_weight=4.0, keep_checkpoints=4)
    result = train(config, verbose=0)
    assert np.all(np.isfinite(result.history["loss"]))
    saved = TrainConfig.load(pathlib.Path(result.output_dir) / "config.json")
    assert saved.teacher_embedding_size == 8 and (tmp_path / "run" / "teacher_embeddings.npz").is_file()
    backbone, head, _, _ = load_trained(result.output_dir)  # the training model with its projection
    assert head.num_classes == 4
    assert ops.convert_to_numpy(backbone(np.zeros((1, 32, 32, 3), "float32"))).shape == (1, 16)

    def agreement(weights):
        """Mean cos(P student, teacher) over the training images, for a weights file."""
        from keras_arcface.data import preprocess
        from keras_arcface.training.model import build_from_config, build_training_model

        student, head = build_from_config(saved, 4)
        model = build_training_model(student, head, teacher_size=8)
        model.load_weights(weights)
        layer = model.get_layer("distillation")
        s = ops.convert_to_numpy(student(preprocess(folder.images))) @ ops.convert_to_numpy(layer.projection)
        return float(np.mean(np.sum(_l2(s) * plain, axis=1)))

    run = pathlib.Path(result.output_dir)
    first, last = agreement(run / "checkpoints" / "epoch-001.weights.h5"), agreement(run / "training_model.weights.h5")
    assert last > first + 0.05, (first, last)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("classification_weight", [0.0, 0.5, 1.0])
def test_classification_weight_scales_the_cross_entropy_beside_distillation(classification_weight, rng):
    """The step's loss is classification_weight * CE + the distillation term; 0 leaves distillation only."""
    from keras_arcface.heads import get_head
    from keras_arcface.training.model import build_training_model, compile_for_training

    keras.utils.set_random_seed(0)
    backbone = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(6)])
    model = build_training_model(backbone, get_head("arcface", 3, scale=16.0, margin=0.2), teacher_size=6,
                                 distill_weight=2.0)
    compile_for_training(model, keras.optimizers.SGD(0.0), jit_compile=False,
                         classification_weight=classification_weight)
    images = rng.standard_normal((5, 4, 4, 3)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1], "int32")
    teacher = _l2(rng.standard_normal((5, 6)).astype("float32"))
    student = ops.convert_to_numpy(backbone(images))
    distillation = 2.0 * np.mean(1 - np.sum(_l2(student) * teacher, axis=1))
    logits = ops.convert_to_numpy(model([images, labels, teacher]))
    shifted = logits - logits.max(axis=1, keepdims=True)
    cross_entropy = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(5), labels])
    loss = float(model.train_on_batch([images, labels, teacher], labels))
    assert loss == pytest.approx(classification_weight * cross_entropy + distillation, rel=1e-4)


def test_distillation_only_needs_a_teacher():
    from keras_arcface.errors import InputError

    with pytest.raises(InputError, match="classification_weight 0 leaves nothing to learn"):
        TrainConfig(data_dirs=["d"], output_dir="o", classification_weight=0.0)
    TrainConfig(data_dirs=["d"], output_dir="o", classification_weight=0.0, teacher="t.onnx")
