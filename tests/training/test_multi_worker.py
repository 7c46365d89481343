"""Training over several worker processes on 127.0.0.1: TensorFlow's MultiWorkerMirroredStrategy
from TF_CONFIG and JAX's multi-process DataParallel / ModelParallel, against one process.

Each worker is a real process running ``train()`` (tests/training/multi_worker_check.py) on one CPU
device; ports are picked free, every process is killed at the end whatever happens.
"""

import contextlib
import importlib.util
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.faces import make_face_folder

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests/training/multi_worker_check.py"
TIMEOUT = 300  # seconds for any one run of the workers
BACKENDS = [pytest.param("tensorflow", id="tensorflow"),
            pytest.param("jax", id="jax", marks=pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                                                  reason="jax is not installed"))]
pytestmark = pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax",
                                reason="starts its own processes for both backends (run once, under the default)")


def free_ports(count):
    """``count`` distinct TCP ports free on 127.0.0.1 now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def worker_environments(backend, workers):
    """The environment of each worker process: TF_CONFIG, or the JAX coordinator variables."""
    base = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
                CUDA_VISIBLE_DEVICES="")
    for name in ("TF_CONFIG", "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        base.pop(name, None)
    if workers == 1:
        return [base]
    if backend == "tensorflow":
        addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
        return [dict(base, TF_CONFIG=json.dumps({"cluster": {"worker": addresses},
                                                 "task": {"type": "worker", "index": index}}))
                for index in range(workers)]
    coordinator = f"127.0.0.1:{free_ports(1)[0]}"
    return [dict(base, JAX_COORDINATOR_ADDRESS=coordinator, JAX_NUM_PROCESSES=str(workers), JAX_PROCESS_ID=str(index))
            for index in range(workers)]


@contextlib.contextmanager
def started_workers(backend, workers, faces, output, *options):
    """Start ``workers`` processes training into ``output``; yields (processes, result files, logs)."""
    processes, logs = [], []
    results = [pathlib.Path(f"{output}-result-{index}.json") for index in range(workers)]
    try:
        for index, env in enumerate(worker_environments(backend, workers)):
            log = open(f"{output}-log-{index}.txt", "w")
            logs.append(log)
            processes.append(subprocess.Popen([sys.executable, str(CHECK), str(faces), str(output), str(results[index]),
                                               *options], env=env, stdout=log, stderr=subprocess.STDOUT))
        yield processes, results
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for log in logs:
            log.close()


def run_workers(backend, workers, faces, output, *options):
    """Train with ``workers`` processes to the end; each one's result (losses, epochs run, kernel shard)."""
    with started_workers(backend, workers, faces, output, *options) as (processes, results):
        deadline = time.time() + TIMEOUT
        for index, process in enumerate(processes):
            try:
                code = process.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                code = "timeout"
            assert code == 0, f"worker {index} of {workers} ({backend}): {code}\n" + _log_tail(output, index)
        return [json.loads(result.read_text()) for result in results]


def _log_tail(output, index):
    return pathlib.Path(f"{output}-log-{index}.txt").read_text()[-4000:]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    make_face_folder(folder / "six", identities=6, per_identity=8, size=32)  # 6 batches of 8
    make_face_folder(folder / "sixteen", identities=16, per_identity=4, size=32)  # Partial FC samples 8 of 16
    return folder


@pytest.fixture(scope="module")
def single_runs(faces, tmp_path_factory):
    """backend -> (result, run folder) of one process training on faces/six with the default options, run once
    for the module: the reference of the cluster's steps, and a folder with a backup to resume from."""
    runs = {}

    def run(backend):
        if backend not in runs:
            output = tmp_path_factory.mktemp(f"single-{backend}") / "run"
            runs[backend] = run_workers(backend, 1, faces / "six", output)[0], output
        return runs[backend]

    return run


def _assert_same_steps(cluster_results, single, what):
    for index, result in enumerate(cluster_results):
        assert len(result["losses"]) == len(single["losses"]), what
        np.testing.assert_allclose(result["losses"], single["losses"], rtol=1e-5,
                                   err_msg=f"{what}: worker {index} vs one process")


@pytest.mark.parametrize("backend", [BACKENDS[0], pytest.param("jax", id="jax",
                                                                 marks=[pytest.mark.slow, *BACKENDS[1].marks])])
def test_two_workers_take_the_steps_of_one_process(backend, faces, single_runs, tmp_path):
    """Two processes, each reading half of every global batch of 8, log the per-step losses of one
    process reading the whole batches; the chief alone writes the run's files.  The JAX row is in the slow
    tier; its fast guard is test_partial_fc_centres_sharded_over_two_jax_processes (two JAX processes through
    the same jax.distributed start and data split, the steps of one process)."""
    single, single_folder = single_runs(backend)
    cluster = run_workers(backend, 2, faces / "six", tmp_path / "cluster")
    _assert_same_steps(cluster, single, backend)
    assert all(np.isfinite(single["losses"])) and len(single["losses"]) == 2 * 4
    run = tmp_path / "cluster"
    assert sorted(path.name for path in run.iterdir()) == sorted(path.name for path in single_folder.iterdir())
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["epoch-001.weights.h5",
                                                                               "epoch-002.weights.h5"]
    leftovers = [path for path in run.rglob("*") if "tmp" in path.name or "partial" in path.name]
    assert not leftovers, leftovers


def test_partial_fc_centres_sharded_over_two_jax_processes(faces, tmp_path):
    """Partial FC under JAX: the class centres split over the two processes' devices (ModelParallel),
    the steps those of one process, the saved head whole."""
    pytest.importorskip("jax")
    options = ("--head", "partial_fc")
    single = run_workers("jax", 1, faces / "sixteen", tmp_path / "single", *options)[0]
    cluster = run_workers("jax", 2, faces / "sixteen", tmp_path / "cluster", *options)
    _assert_same_steps(cluster, single, "partial_fc")
    assert single["kernel_shard"] == [16, 16]
    assert [result["kernel_shard"] for result in cluster] == [[16, 8], [16, 8]]  # 16 classes over 2 devices
    import h5py

    with h5py.File(tmp_path / "cluster" / "training_model.weights.h5") as saved:
        assert saved["layers/partial_fc_layer/vars/0"].shape == (16, 16)  # gathered from both processes


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_worker_then_a_restart_of_both_resumes(backend, faces, tmp_path):
    """SIGKILL one of two workers in the middle of epoch 2, then the other; started again, both go on
    from the epoch-1 backup and their epochs 2 and 3 are those of an uninterrupted single process
    (SphereFace: its step counter, restored, sets the margin's annealing).  Fast guards: one process
    killed and resumed (test_train.py), two workers taking one process' steps (above), the backup read
    by every worker and written by the chief (test_workers_that_do_not_share_... below)."""
    options = ("--epochs", "3", "--head", "sphereface")
    uninterrupted = run_workers(backend, 1, faces / "six", tmp_path / "single", *options)[0]
    assert uninterrupted["head_steps"] == 3 * 4
    output = tmp_path / "cluster"
    with started_workers(backend, 2, faces / "six", output, *options, "--pause-in-epoch", "2") as (processes, _):
        paused = pathlib.Path(f"{output}.paused-1")
        deadline = time.time() + TIMEOUT
        while not paused.exists() and time.time() < deadline and all(p.poll() is None for p in processes):
            time.sleep(0.1)
        assert paused.exists(), "worker 1 did not reach epoch 2\n" + _log_tail(output, 1)
        os.kill(processes[1].pid, signal.SIGKILL)
        processes[1].wait()
        os.kill(processes[0].pid, signal.SIGKILL)  # waiting on its dead peer; restart both
        processes[0].wait()
    for final in ("history.json", "backbone.weights.h5", "training_model.weights.h5"):
        assert not (output / final).exists(), f"a killed run left {final}"
    assert (output / "checkpoints" / "epoch-001.weights.h5").exists()
    resumed = run_workers(backend, 2, faces / "six", output, *options)
    for result in resumed:
        assert result["epochs_run"] == 2, "the restart must run epochs 2 and 3 only"
        assert result["head_steps"] == 3 * 4
        np.testing.assert_allclose(result["losses"], uninterrupted["losses"][4:], rtol=1e-5)
    assert (output / "checkpoints" / "epoch-003.weights.h5").exists()
    # The chief's record: epoch 1 from the killed run, epochs 2 and 3 from the restart, as one uninterrupted run.
    assert json.loads((output / "history.json").read_text())["loss"] == pytest.approx(
        [uninterrupted["losses"][3], uninterrupted["losses"][7], uninterrupted["losses"][11]], rel=1e-5)


@pytest.mark.parametrize("backend", [BACKENDS[0], pytest.param("jax", id="jax",
                                                                 marks=[pytest.mark.slow, *BACKENDS[1].marks])])
def test_workers_that_do_not_share_the_output_folder_stop_before_training(backend, faces, single_runs, tmp_path):
    """Worker 0 finds a backup to resume from, worker 1 an empty folder of its own: rather than one
    resuming and the other starting afresh (different weights under one all-reduce), both stop.  The JAX row is
    in the slow tier: the check is the same Python on both backends, and JAX's all-gather of it runs in every
    default-tier two-worker JAX run (test_two_workers_take_the_steps_of_one_process[jax])."""
    import shutil

    worker_0 = tmp_path / "cluster-w0"  # the single run's folder, as if it had trained there (it kept its backup)
    shutil.copytree(single_runs(backend)[1], worker_0)
    config = json.loads((worker_0 / "config.json").read_text())
    (worker_0 / "config.json").write_text(json.dumps({**config, "output_dir": str(worker_0)}))
    assert (worker_0 / "backup").is_dir()
    output = tmp_path / "cluster"
    with started_workers(backend, 2, faces / "six", output, "--output-per-worker") as (processes, _):
        codes = [process.wait(timeout=TIMEOUT) for process in processes]
    for index, code in enumerate(codes):
        log = _log_tail(output, index)
        assert code != 0 and "every worker needs the same output folder" in log, log
    assert not (tmp_path / "cluster-w1" / "checkpoints").exists()
