"""Test settings shared by every test: quiet TensorFlow, a fixed seed, the shared data path; the tiers
(``--run-slow``) and the per-test time limit come from tests/tiers.py."""

import importlib.util
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# JAX (in-process under KERAS_BACKEND=jax, and in the JAX processes tests start, which inherit this): on CPU,
# XLA compiles every weight shape's partitionable-threefry initializer for about 0.85 s, so building a tiny
# IResNet took 7.7 s. The classic threefry draws other (equally valid) random numbers and compiles 5x faster;
# no test depends on which stream Keras draws. A user's own setting wins.
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "0")
# Zoo downloads go to a cache of this test session, never the user's.
os.environ.setdefault("KERAS_ARCFACE_CACHE", __import__("tempfile").mkdtemp(prefix="keras-arcface-test-cache-"))

# Before Keras, as in a user's program: importing the package sets the oneDNN default (see its __init__).
import keras_arcface  # noqa: E402,F401

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest_plugins = ["tests.tiers", "pytester"]

# pymilvus gives its loggers stream handlers bound to the sys.stderr of the moment it is imported: imported first
# inside a test that uses capsys, they would write to that test's closed capture afterwards (a later warning then
# fails an unrelated test). Imported here, they write to the session's stderr.
if importlib.util.find_spec("pymilvus") is not None:
    import pymilvus  # noqa: E402,F401

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Every test starts at the float32 policy with a fresh seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


def pytest_collection_modifyitems(config, items):
    """Under KERAS_BACKEND=jax only the backend-neutral tests (marked ``backend_neutral``) run."""
    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow-only test; backend is {keras.backend.backend()}")
    for item in items:
        if "backend_neutral" not in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    """``host:port`` of a Milvus Lite gRPC server with its data in a temporary folder, stopped after the module."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path_factory.mktemp("milvus")
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while server.poll() is None and time.monotonic() < deadline:
        with socket.socket() as attempt:
            if attempt.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    assert server.poll() is None, server.stderr.read().decode()[-2000:]
    yield f"127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)
