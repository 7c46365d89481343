"""Fine-tuning from pretrained weights: init_from loads them, a resume keeps its own progress,
frozen BatchNorm, head-only epochs, and clear errors for sources that do not fit."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.embedding import load_keras_model
from keras_arcface.training import TrainConfig, train
from tests.faces import make_face_folder

#: A tiny IResNet (one block a stage): what init_from does is the same for every backbone.
TINY = {"backbone": "iresnet18", "backbone_params": {"stage_depths": [1, 1, 1, 1], "base_width": 8},
        "embedding_size": 8, "image_size": 32}


def _config(tmp_path, run, **overrides):
    faces = tmp_path / "faces"
    if not faces.exists():
        make_face_folder(faces, identities=4, per_identity=8, size=32)
    values = dict(data_dirs=[str(faces)], output_dir=str(tmp_path / run), epochs=1, batch_size=8,
                  warmup_epochs=0, learning_rate=0.05, **TINY)
    values.update(overrides)
    return TrainConfig(**values)


class FirstStepEmbeddings(keras.callbacks.Callback):
    """The backbone's embeddings of ``x`` before the first step, and its weights after each epoch."""

    def __init__(self, x):
        super().__init__()
        self.x, self.before, self.trainable_by_epoch, self.kernels = x, None, [], []

    def on_train_begin(self, logs=None):
        backbone = self.model.get_layer(TINY["backbone"])
        self.before = ops.convert_to_numpy(backbone(self.x, training=False))

    def on_epoch_end(self, epoch, logs=None):
        backbone = self.model.get_layer(TINY["backbone"])
        self.trainable_by_epoch.append(backbone.trainable)
        self.kernels.append(ops.convert_to_numpy(backbone.get_layer("stem_conv").kernel))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pretrained")
    train(_config(tmp_path, "pretrained"), verbose=0)
    return tmp_path / "pretrained"


@pytest.mark.backend_neutral
def test_init_from_a_folder_starts_from_its_weights(tmp_path, pretrained):
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    want = ops.convert_to_numpy(load_keras_model(pretrained)(x, training=False))
    probe = FirstStepEmbeddings(x)
    config = _config(tmp_path, "tuned", init_from=str(pretrained), epochs=2)
    train(config, verbose=0, callbacks=[probe])
    np.testing.assert_array_equal(probe.before, want)
    tuned = ops.convert_to_numpy(load_keras_model(tmp_path / "tuned")(x, training=False))
    assert not np.allclose(tuned, want)  # it trained from there
    # Run again: the run is complete, its backup restores its own weights; nothing re-loads the
    # pretrained ones over them.
    train(config, verbose=0)
    np.testing.assert_array_equal(ops.convert_to_numpy(load_keras_model(tmp_path / "tuned")(x, training=False)), tuned)
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["init_from"] == str(pretrained)


@pytest.mark.backend_neutral
def test_init_from_a_weights_file_and_frozen_batchnorm(tmp_path, pretrained):
    config = _config(tmp_path, "frozen", init_from=str(pretrained / "backbone.weights.h5"), freeze_batchnorm=True)
    train(config, verbose=0)
    before, after = load_keras_model(pretrained), load_keras_model(tmp_path / "frozen")
    for old, new in zip(before.layers, after.layers):
        if isinstance(old, keras.layers.BatchNormalization):  # statistics and affine parameters unchanged
            for a, b in zip(old.weights, new.weights):
                np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    conv = [layer.name for layer in before.layers if isinstance(layer, keras.layers.Conv2D)][0]
    assert not np.array_equal(ops.convert_to_numpy(before.get_layer(conv).kernel),
                              ops.convert_to_numpy(after.get_layer(conv).kernel))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="head-only epochs are TensorFlow-only")
def test_head_only_epochs_keep_the_backbone_then_train_it(tmp_path, pretrained):
    probe = FirstStepEmbeddings(np.zeros((1, 32, 32, 3), "float32"))
    config = _config(tmp_path, "head-first", init_from=str(pretrained), epochs=2, head_only_epochs=1,
                     freeze_batchnorm=True)
    train(config, verbose=0, callbacks=[probe])
    assert probe.trainable_by_epoch == [False, True]
    start = ops.convert_to_numpy(load_keras_model(pretrained).get_layer("stem_conv").kernel)
    np.testing.assert_array_equal(probe.kernels[0], start)  # epoch 1: the backbone did not move
    assert not np.array_equal(probe.kernels[1], start)      # epoch 2: it trains, BatchNorm still frozen
    bn = load_keras_model(tmp_path / "head-first").get_layer("stem_bn")
    np.testing.assert_array_equal(ops.convert_to_numpy(bn.moving_mean),
                                  ops.convert_to_numpy(load_keras_model(pretrained).get_layer("stem_bn").moving_mean))


@pytest.mark.backend_neutral
def test_head_only_epochs_are_refused_where_the_trainer_cannot_switch(tmp_path, pretrained):
    config = _config(tmp_path, "jax", init_from=str(pretrained), epochs=2, head_only_epochs=1)
    if keras.backend.backend() == "tensorflow":
        pytest.skip("supported on TensorFlow (tested above)")
    with pytest.raises(ValueError, match="head_only_epochs needs the TensorFlow backend"):
        train(config, verbose=0)


def test_init_from_errors_name_the_source(tmp_path, pretrained):
    with pytest.raises(ValueError, match="holds a iresnet18 .* 8-d .* 16-d"):
        train(_config(tmp_path, "bad", init_from=str(pretrained), embedding_size=16), verbose=0)
    with pytest.raises(ValueError, match="neither a file, a folder nor a zoo model"):
        train(_config(tmp_path, "bad2", init_from="no-such-model"), verbose=0)
    with pytest.raises(ValueError, match="head_only_epochs"):
        _config(tmp_path, "bad3", head_only_epochs=1, epochs=1)


class HeadKernelAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.kernel = ops.convert_to_numpy(self.model.get_layer("head").kernel)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("head, params", [("arcface", {}), ("subcenter_arcface", {"subcenters": 2})])
def test_imprinted_head_starts_at_the_class_means(tmp_path, pretrained, head, params):
    """init_head='imprint': column j (each sub-centre of class j) is the normalised mean of the
    pretrained backbone's normalised embeddings of class j's training images."""
    from keras_arcface.data import FaceFolder
    from keras_arcface.runtime import InputSpec

    probe = HeadKernelAtStart()
    config = _config(tmp_path, f"imprinted-{head}", init_from=str(pretrained), init_head="imprint", head=head,
                     head_params=params)
    train(config, verbose=0, callbacks=[probe])
    faces = FaceFolder.scan(tmp_path / "faces", image_size=(32, 32))
    embeddings = ops.convert_to_numpy(load_keras_model(pretrained)(InputSpec(size=(32, 32)).prepare(faces.images),
                                                                training=False)).astype(np.float64)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    means = np.stack([embeddings[faces.labels == k].mean(axis=0) for k in range(faces.num_classes)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    np.testing.assert_allclose(probe.kernel.T, np.repeat(means, params.get("subcenters", 1), axis=0), atol=1e-5)


def test_imprinting_needs_a_pretrained_backbone_and_a_cosine_head(tmp_path, pretrained):
    with pytest.raises(ValueError, match="set init_from"):
        _config(tmp_path, "x", init_head="imprint")
    with pytest.raises(ValueError, match="normalised class centres"):
        train(_config(tmp_path, "softmax", init_from=str(pretrained), init_head="imprint", head="softmax"),
              verbose=0)


def test_lr_find_searches_from_the_pretrained_backbone(tmp_path, pretrained, monkeypatch):
    """lr-find builds its model like train: init_from loads the weights (and freezing applies)."""
    from keras_arcface.training import lr_range_test, run

    loaded = []
    original = run.load_initial_weights
    monkeypatch.setattr(run, "load_initial_weights", lambda backbone, path: loaded.append(path) or original(
        backbone, path))
    config = _config(tmp_path, "lr", init_from=str(pretrained), freeze_batchnorm=True)
    result = lr_range_test(config, min_lr=1e-3, max_lr=1e-1, steps=4, verbose=0)
    assert [str(p) for p in loaded] == [str(pretrained / "backbone.weights.h5")]
    assert len(result.losses) == 4 and np.all(np.isfinite(result.losses))


def test_a_model_trained_on_another_normalisation_is_fine_tuned_and_recorded_with_it(tmp_path, pretrained,
                                                                                      monkeypatch):
    """init_from a model that takes (x - 127) / 128 (as the zoo's mobilefacenet-512): the batches and the
    imprinted centres use that normalisation, and the run records it for evaluation and export; the
    source is resolved and checked once, for both."""
    import shutil

    from keras_arcface.data import FaceFolder
    from keras_arcface.runtime import InputSpec
    from keras_arcface.runtime.embedder import folder_spec
    from keras_arcface.training import run as run_module
    from keras_arcface.training.run import make_batches

    source = tmp_path / "other-normalisation"
    shutil.copytree(pretrained, source, ignore=shutil.ignore_patterns("backup", "checkpoints"))
    recorded = json.loads((source / "config.json").read_text())
    spec = InputSpec(size=(32, 32), mean=127.0, std=128.0)
    (source / "config.json").write_text(json.dumps({**recorded, "input_spec": spec.to_dict()}))
    resolved = []
    resolve = run_module.initial_source
    monkeypatch.setattr(run_module, "initial_source", lambda *a, **k: resolved.append(a) or resolve(*a, **k))
    probe = HeadKernelAtStart()
    train(_config(tmp_path, "tuned", init_from=str(source), init_head="imprint"), verbose=0, callbacks=[probe])
    assert resolved == [(str(source),)]
    assert folder_spec(tmp_path / "tuned") == spec  # what eval, export and load_embedder read
    tuned = TrainConfig.load(tmp_path / "tuned" / "config.json")
    faces = FaceFolder.scan(tmp_path / "faces", image_size=(32, 32))
    shifted = make_batches(tuned, faces)[0][0][0]
    default = make_batches(_config(tmp_path, "default"), faces)[0][0][0]
    np.testing.assert_allclose(shifted - default, 0.5 / 128, atol=1e-6)
    embeddings = ops.convert_to_numpy(load_keras_model(source)(spec.prepare(faces.images), training=False))
    embeddings = embeddings.astype(np.float64)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    means = np.stack([embeddings[faces.labels == k].mean(axis=0) for k in range(faces.num_classes)])
    np.testing.assert_allclose(probe.kernel.T, means / np.linalg.norm(means, axis=1, keepdims=True), atol=1e-5)


def test_init_from_a_channels_first_model_is_refused(tmp_path, pretrained):
    import shutil

    source = tmp_path / "nchw"
    shutil.copytree(pretrained, source, ignore=shutil.ignore_patterns("backup", "checkpoints"))
    recorded = json.loads((source / "config.json").read_text())
    recorded["input_spec"] = {"size": [32, 32], "layout": "NCHW", "colour": "RGB", "mean": 127.5, "std": 128.0}
    (source / "config.json").write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match="takes NCHW input; Keras backbones take NHWC"):
        train(_config(tmp_path, "bad", init_from=str(source)), verbose=0)
