"""Runs every backend-neutral test again in a fresh process with KERAS_BACKEND=jax."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="already the JAX run")
def test_backend_neutral_tests_pass_on_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "backend_neutral", "-p", "no:randomly"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"JAX backend run: {summary}")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in summary
