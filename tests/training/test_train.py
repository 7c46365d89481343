"""The training entry point: outputs, every precision x XLA, resume after SIGKILL, NaN guard."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.cli import main
from keras_arcface.embedding import load_keras_model
from keras_arcface.training import TrainConfig, TrainingDivergedError, load_trained, train
from tests.conftest import SHARED_DATA
from tests.faces import make_face_folder

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY_IRESNET = {"backbone": "iresnet18", "backbone_params": {"stage_depths": [1, 1, 1, 1], "base_width": 8},
                "embedding_size": 16, "image_size": 32}


def _config(tmp_path, **overrides):
    faces = tmp_path / "faces"
    if not faces.exists():
        make_face_folder(faces, identities=4, per_identity=8, size=32)
    values = dict(data_dirs=[str(faces)], output_dir=str(tmp_path / "run"), epochs=2, batch_size=8,
                  warmup_epochs=0.5, learning_rate=0.02, **TINY_IRESNET)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.backend_neutral
def test_train_writes_the_model_label_map_and_config(tmp_path):
    config = _config(tmp_path, head="cosface")
    result = train(config, verbose=0)
    out = pathlib.Path(result.output_dir)
    for name in ("config.json", "label_map.json", "backbone.weights.h5", "training_model.weights.h5",
                 "history.json", "checkpoints/epoch-002.weights.h5"):
        assert (out / name).exists(), name
    assert json.loads((out / "label_map.json").read_text()) == {f"id_{k}": k for k in range(4)}
    assert TrainConfig.load(out / "config.json") == config
    assert len(result.history["loss"]) == 2 and np.all(np.isfinite(result.history["loss"]))
    backbone, head, loaded_config, label_map = load_trained(out)
    assert loaded_config == config and head.num_classes == 4
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    assert ops.convert_to_numpy(backbone(x)).shape == (2, 16)
    # A zoo folder ships backbone.weights.h5 without the training model: same embeddings.
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("config.json", "label_map.json", "backbone.weights.h5"):
        (alone / name).write_bytes((out / name).read_bytes())
    np.testing.assert_allclose(ops.convert_to_numpy(load_keras_model(alone)(x)),
                               ops.convert_to_numpy(backbone(x)), atol=1e-6)


#: Every precision x graph / XLA.  The default tier trains each policy once: float32 under XLA (every other test
#: trains float32 in graph mode), both mixed policies in graph mode (float16's loss scaling under XLA trains in
#: heads/test_precision.py and training/test_distributed.py); the slow tier the rest.
DEFAULT_TIER = {("float32", True), ("mixed_float16", False), ("mixed_bfloat16", False)}
PRECISION_MATRIX = [pytest.param(precision, jit, id=f"{'xla' if jit else 'graph'}-{precision}",
                                 marks=() if (precision, jit) in DEFAULT_TIER else pytest.mark.slow)
                    for precision in ("float32", "mixed_float16", "mixed_bfloat16") for jit in (False, True)]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="JAX always compiles")
@pytest.mark.parametrize("precision, jit", PRECISION_MATRIX)
def test_every_precision_with_and_without_xla(tmp_path, precision, jit):
    result = train(_config(tmp_path, precision=precision, jit_compile=jit, head="arcface", epochs=1), verbose=0)
    assert np.all(np.isfinite(result.history["loss"]))
    backbone, _, _, _ = load_trained(result.output_dir)  # rebuilt in float32 from mixed training
    assert backbone.dtype_policy.name == "float32"


def test_cli_train_and_exclude_list(tmp_path, capsys):
    config = _config(tmp_path)
    exclude = tmp_path / "exclude.csv"
    exclude.write_text("id_a,n_a\nid_3,8\n")
    code = main(["train", "--data", *config.data_dirs, "--output", str(tmp_path / "cli"),
                 "--backbone", TINY_IRESNET["backbone"],
                 "--backbone-params", json.dumps(TINY_IRESNET["backbone_params"]), "--image-size", "32",
                 "--embedding-size", "16", "--epochs", "1",
                 "--batch-size", "8", "--head", "sphereface", "--head-params", '{"margin": 3}',
                 "--exclude", str(exclude), "--lr", "0.01", "--augment", "light"])
    assert code == 0
    assert "on 24 images of 3 identities" in capsys.readouterr().out
    assert TrainConfig.load(tmp_path / "cli" / "config.json").augment == "light"


@pytest.mark.backend_neutral
def test_max_steps_per_epoch_caps_every_epoch(tmp_path):
    """Regression: a cap passed to fit(steps_per_epoch=) let epoch 2 run the 1 batch left over."""

    class CountSteps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.per_epoch = []

        def on_epoch_begin(self, epoch, logs=None):
            self.per_epoch.append(0)

        def on_train_batch_end(self, batch, logs=None):
            self.per_epoch[-1] += 1

    counter = CountSteps()
    train(_config(tmp_path, epochs=3, max_steps_per_epoch=3), verbose=0, callbacks=[counter])
    assert counter.per_epoch == [3, 3, 3]  # 32 images in batches of 8: 4 per epoch, capped at 3


def test_a_run_saved_before_a_config_field_existed_still_resumes(tmp_path):
    config = _config(tmp_path, epochs=1)
    out = pathlib.Path(config.output_dir)
    (out / "backup").mkdir(parents=True)
    old = json.loads(config.to_json())
    del old["augment"]  # a config.json written before augmentation was added
    (out / "config.json").write_text(json.dumps(old))
    assert np.all(np.isfinite(train(config, verbose=0).history["loss"]))
    with pytest.raises(ValueError, match="another configuration"):
        train(_config(tmp_path, epochs=1, augment="light"), verbose=0)


def test_a_run_that_fails_mid_way_leaves_no_final_files_and_resumes(tmp_path):
    """An exception in epoch 2 (a bug, a full disk): no backbone / training model / history file that
    a later step could take for a finished run; the same call then resumes and finishes."""

    class FailOnce(keras.callbacks.Callback):
        failed = False

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1 and not FailOnce.failed:
                FailOnce.failed = True
                raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="simulated"):
        train(_config(tmp_path, epochs=2), verbose=0, callbacks=[FailOnce()])
    out = tmp_path / "run"
    assert not [p.name for p in out.iterdir() if p.name in ("backbone.weights.h5", "training_model.weights.h5",
                                                            "history.json") or "partial" in p.name]
    result = train(_config(tmp_path, epochs=2), verbose=0, callbacks=[FailOnce()])
    assert result.epochs_run == 1 and (out / "backbone.weights.h5").is_file()
    assert len(result.history["loss"]) == 2, "the history holds epoch 1 of the failed call too"
    # and the resumed run is the uninterrupted one, epoch for epoch (a process killed mid-epoch: the slow
    # test_a_run_resumed_after_sigkill_equals_the_uninterrupted_run)
    uninterrupted = train(_config(tmp_path, epochs=2, output_dir=str(tmp_path / "uninterrupted")), verbose=0)
    np.testing.assert_allclose(result.history["loss"], uninterrupted.history["loss"], rtol=1e-5)


def test_output_folder_of_another_run_is_refused_before_any_work(tmp_path):
    """The refusal names each differing setting and happens before the faces are read."""
    train(_config(tmp_path, epochs=1), verbose=0)
    with pytest.raises(ValueError, match="another configuration") as error:
        train(_config(tmp_path, epochs=2, learning_rate=0.05, data_dirs=[str(tmp_path / "not-read")]), verbose=0)
    for difference in ("not-read'] now", "learning_rate: 0.02 there, 0.05 now", "epochs: 1 there, 2 now"):
        assert difference in str(error.value)


def test_nan_guard_stops_with_the_last_good_checkpoint(tmp_path):
    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                kernel = self.model.get_layer("head").kernel
                kernel.assign(ops.full(kernel.shape, float("nan")))

    with pytest.raises(TrainingDivergedError, match=r"loss is nan at epoch 2, step 1.*epoch-001\.weights\.h5"):
        train(_config(tmp_path, epochs=3), verbose=0, callbacks=[Poison()])
    out = tmp_path / "run"
    assert (out / "checkpoints" / "epoch-001.weights.h5").exists()
    assert not (out / "checkpoints" / "epoch-002.weights.h5").exists()


def _killed_in_epoch_two_then_resumed(tmp_path, capsys):
    """Kill a training process during epoch 2 of 3; the same command (in this process) finishes epochs 2 and 3.
    Returns the run's history."""
    make_face_folder(tmp_path / "faces", identities=4, per_identity=40, size=32)

    def command(output):
        return [sys.executable, "-m", "keras_arcface.cli", "train", "--data", str(tmp_path / "faces"),
                "--output", str(output), "--backbone", TINY_IRESNET["backbone"], "--backbone-params",
                json.dumps(TINY_IRESNET["backbone_params"]), "--image-size", "32", "--embedding-size", "16",
                "--epochs", "3", "--batch-size", "8", "--head", "sphereface", "--lr", "0.01"]

    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    first_checkpoint = tmp_path / "run" / "checkpoints" / "epoch-001.weights.h5"
    process = subprocess.Popen(command(tmp_path / "run"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not first_checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    time.sleep(0.05)  # into epoch 2 (its backup precedes the checkpoint; 20 steps follow)
    assert process.poll() is None, "training ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "run" / "checkpoints" / "epoch-002.weights.h5").exists(), "killed after epoch 2, not in it"
    for final in ("history.json", "backbone.weights.h5", "training_model.weights.h5"):
        assert not (tmp_path / "run" / final).exists(), f"a killed run left {final}"
    assert main(command(tmp_path / "run")[3:]) == 0  # the same command again (in this process: no second start-up)
    assert "2 epoch(s) this run" in capsys.readouterr().out, "the second run must do epochs 2 and 3 only"
    assert (tmp_path / "run" / "checkpoints" / "epoch-003.weights.h5").exists()
    _, head, _, _ = load_trained(tmp_path / "run")
    assert int(ops.convert_to_numpy(head.iteration)) == 3 * 20  # SphereFace's counter carried over
    return json.loads((tmp_path / "run" / "history.json").read_text())


def test_resume_after_sigkill_mid_epoch(tmp_path, capsys):
    """A process killed mid-epoch leaves no final file; the same command resumes it from the epoch-1 backup and
    finishes, SphereFace's step counter carried over.  (Its history equal to an uninterrupted run's: the slow
    test below; a resumed run equal to the uninterrupted one: test_a_run_that_fails_mid_way_..., above.)"""
    history = _killed_in_epoch_two_then_resumed(tmp_path, capsys)
    assert all(len(values) == 3 for values in history.values()) and "ignored_label_rows" in history


@pytest.mark.slow
def test_a_run_resumed_after_sigkill_equals_the_uninterrupted_run(tmp_path, capsys):
    """The history.json of the run killed in epoch 2 and resumed equals, epoch for epoch, that of the same run
    without a kill (trained here, in process).  Slow tier (a third training of the test above, which guards it
    in the default tier)."""
    history = _killed_in_epoch_two_then_resumed(tmp_path, capsys)
    reference = train(TrainConfig(data_dirs=[str(tmp_path / "faces")], output_dir=str(tmp_path / "uninterrupted"),
                                  epochs=3, batch_size=8, head="sphereface", learning_rate=0.01, **TINY_IRESNET),
                      verbose=0).history
    assert sorted(history) == sorted(reference)
    for metric, values in reference.items():
        assert len(values) == len(history[metric]) == 3, metric
        np.testing.assert_allclose(history[metric], values, rtol=1e-5, err_msg=metric)


def test_loss_decreases_on_synthetic_identities(tmp_path):
    """The fast guard of the real-face run below: the same head and margin, a tiny backbone, 4 synthetic
    identities; the loss of the last epoch is below the first's."""
    losses = train(_config(tmp_path, epochs=3, head="arcface", head_params={"margin": 0.2, "scale": 32.0},
                           learning_rate=0.05), verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "yaleb" / "aligned").is_dir(), reason="needs ../shared/data (Yale B)")
def test_loss_decreases_on_real_faces(tmp_path):
    """MobileFaceNet + ArcFace on 8 Extended Yale B subjects (real aligned 112x112 crops)."""
    subjects = sorted(p.name for p in (SHARED_DATA / "yaleb" / "aligned").iterdir())[:8]
    from keras_arcface.data import FaceFolder

    faces = FaceFolder.scan(SHARED_DATA / "yaleb" / "aligned", identities=set(subjects))
    config = TrainConfig(data_dirs=[str(SHARED_DATA / "yaleb" / "aligned")], output_dir=str(tmp_path / "yaleb"),
                         epochs=4, batch_size=32, max_steps_per_epoch=4, learning_rate=0.05,
                         warmup_epochs=0.5, head="arcface", head_params={"margin": 0.2, "scale": 32.0})
    losses = train(config, faces=faces, verbose=0).history["loss"]
    assert losses[-1] < losses[0], losses


def test_resume_survives_a_backup_torn_by_the_kill(tmp_path):
    """A kill while the backup is written leaves a broken file: resume from the one before."""

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    config = _config(tmp_path, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0, callbacks=[Crash()])
    latest = tmp_path / "run" / "backup" / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[:1000])
    result = train(config, verbose=0)
    assert result.epochs_run == 2  # epochs 2 and 3 again, from the epoch-1 backup
    assert len(result.history["loss"]) == 3 and None not in result.history["loss"]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorBoard logs need TensorFlow here")
def test_tensorboard_logs_are_written(tmp_path):
    result = train(_config(tmp_path, epochs=1, tensorboard=True), verbose=0)
    events = list((pathlib.Path(result.output_dir) / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"
