"""A training run's record survives resumes, re-runs and a second process: history.json holds every epoch, a
finished run re-run changes no file, and one folder takes one live run.  (The SIGKILL-and-resume history check is
test_train.py's test_resume_after_sigkill_mid_epoch; on two workers, test_multi_worker.py's slow kill test.)"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import keras
import pytest

from keras_arcface.cli import main
from keras_arcface.training import train
from keras_arcface.training.distribute import Cluster
from keras_arcface.training.lock import HOLDER_FILE, RunFolderBusyError, run_folder_lock
from tests.training.test_train import ROOT, TINY_IRESNET, _config


def folder_bytes(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_an_interrupted_call_its_resume_and_a_rerun_keep_the_record(tmp_path):
    """An exception in epoch 3 after two finished epochs: the resumed call trains epoch 3 and history.json
    holds epochs 1-3 (the earlier call's from the record kept in the backup), TensorBoard's epoch steps go
    on from where they stopped, and a re-run of the finished run trains nothing and changes no file."""
    tensorboard = keras.backend.backend() == "tensorflow"  # TensorBoard logs need TensorFlow here

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, epochs=3, tensorboard=tensorboard), verbose=0, callbacks=[Stop()])
    assert not (tmp_path / "run" / "history.json").exists()
    recorded = json.loads((tmp_path / "run" / "backup" / "history.json").read_text())
    result = train(_config(tmp_path, epochs=3, tensorboard=tensorboard), verbose=0)
    assert result.epochs_run == 1
    assert result.history["loss"][:2] == recorded["loss"] and len(result.history["loss"]) == 3
    assert len(result.history["ignored_label_rows"]) == 3  # every per-epoch record, epoch by epoch
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == result.history
    if tensorboard:
        import tensorflow as tf

        steps = []
        for events in sorted((tmp_path / "run" / "tensorboard" / "train").glob("events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(str(events)):
                steps += [event.step for value in event.summary.value if value.tag == "epoch_loss"]
        assert sorted(steps) == [0, 1, 2], steps
    before = folder_bytes(tmp_path / "run")
    again = train(_config(tmp_path, epochs=3, tensorboard=tensorboard), verbose=0)
    assert again.epochs_run == 0 and again.history == result.history
    assert folder_bytes(tmp_path / "run") == before, "a re-run of a finished run changed a file"


def _train_command(tmp_path, epochs):
    return [sys.executable, "-m", "keras_arcface.cli", "train", "--data", str(tmp_path / "faces"), "--output",
            str(tmp_path / "run"), "--backbone", TINY_IRESNET["backbone"], "--backbone-params",
            json.dumps(TINY_IRESNET["backbone_params"]), "--image-size", "32", "--embedding-size", "16",
            "--epochs", str(epochs), "--batch-size", "8", "--lr", "0.02", "--warmup-epochs", "0.5"]


def test_a_second_run_on_a_live_run_folder_stops_at_once_naming_the_holder(tmp_path, capsys):
    _config(tmp_path)  # writes the faces
    command = _train_command(tmp_path, epochs=200)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        holder_file = tmp_path / "run" / HOLDER_FILE
        deadline = time.time() + 120
        while not holder_file.exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert holder_file.exists(), process.stderr.read() if process.poll() is not None else "no holder record"
        for second in (command[3:], ["lr-find", *command[4:], "--steps", "3"]):
            start = time.perf_counter()
            assert main(second) == 2
            error = capsys.readouterr().err
            assert time.perf_counter() - start < 30, "the second run must stop at once, not after training"
            assert f"pid {process.pid} on {socket.gethostname()}" in error and "one run per folder" in error
            assert "--output" in error and "output_dir" not in error
        assert process.poll() is None, "the live run must not be disturbed"
    finally:
        process.kill()  # SIGKILL: its lock is left behind by a dead process
        process.wait()
    assert holder_file.exists()  # the record of the killed holder stays ...
    with run_folder_lock(tmp_path / "run"):  # ... and its lock is taken over at once
        assert json.loads(holder_file.read_text())["pid"] == os.getpid()
    assert not holder_file.exists()


def test_a_worker_stops_for_another_live_cluster_and_goes_on_for_its_own(tmp_path):
    mine = Cluster(2, 1, key='{"worker": ["127.0.0.1:1", "127.0.0.1:2"]}')
    with run_folder_lock(tmp_path, cluster=Cluster(2, 0, key=mine.key)):  # my chief holds it
        with run_folder_lock(tmp_path, cluster=mine):
            pass
    other = {"command": "train", "pid": os.getpid(), "host": socket.gethostname(), "since": "now", "cluster": "other"}
    (tmp_path / HOLDER_FILE).write_text(json.dumps(other))
    with pytest.raises(RunFolderBusyError, match=f"pid {os.getpid()}"):
        with run_folder_lock(tmp_path, cluster=mine):
            pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / HOLDER_FILE).write_text(json.dumps({**other, "pid": int(dead.stdout)}))
    with run_folder_lock(tmp_path, cluster=mine):  # a record left by a dead process does not stop a worker
        pass


def test_the_lock_files_are_not_a_training_run_of_their_own(tmp_path):
    """A folder holding only the lock and its record (a run killed before config.json) still takes a run."""
    (tmp_path / "run").mkdir()
    with run_folder_lock(tmp_path / "run"):
        pass
    assert train(_config(tmp_path, epochs=1), verbose=0).epochs_run == 1
    assert pathlib.Path(tmp_path / "run" / "history.json").is_file()
