"""Importing keras_arcface turns TensorFlow's oneDNN kernels on (x86 CPUs), unless the user said otherwise."""

import os
import subprocess
import sys

import pytest

from keras_arcface import ONEDNN_BY_DEFAULT

pytestmark = pytest.mark.skipif(not ONEDNN_BY_DEFAULT, reason="the oneDNN default is set on x86 CPUs only")

ONEDNN_ON = "oneDNN custom operations are on"


def tensorflow_log_after_importing_ours(onednn_setting):
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "0"  # TensorFlow says at import whether oneDNN is on
    if onednn_setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn_setting
    # (TensorFlow itself, not Keras on it: the setting is read when TensorFlow loads)
    code = "import os, keras_arcface, tensorflow; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), done.stderr


def test_importing_the_package_turns_onednn_on_before_tensorflow_loads():
    setting, log = tensorflow_log_after_importing_ours(None)
    assert setting == "1"
    assert ONEDNN_ON in log


def test_a_users_setting_wins():
    setting, log = tensorflow_log_after_importing_ours("0")
    assert setting == "0"
    assert ONEDNN_ON not in log


def test_this_test_session_runs_as_users_do():
    assert os.environ.get("TF_ENABLE_ONEDNN_OPTS") in ("1", "0")  # conftest imports keras_arcface first
