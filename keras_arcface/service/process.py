"""A ``keras-arcface serve`` process started from Python on a free loopback port: what the tests and
``scripts/serve_load.py`` run, and a way to try the service from a notebook.

    with ServiceProcess("--gallery", "faces.npz") as service:
        requests.post(f"{service.url}/verify", files=...)
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port(host="127.0.0.1"):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServiceProcess:
    """``keras-arcface serve ARGUMENTS`` on 127.0.0.1 (serve's default host; ``url`` assumes it) and a free port
    (``--port`` added unless given) in its own process group, its output in ``log`` (a file); :meth:`start` waits
    for ``/ready``.  :meth:`stop` sends SIGTERM (uvicorn's graceful shutdown), :meth:`kill` SIGKILL to the whole
    group (workers included)."""

    def __init__(self, *arguments, env=None, log=None, port=None):
        self.arguments = [str(argument) for argument in arguments]
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ if env is None else env)
        self.log = pathlib.Path(log or tempfile.mkstemp(prefix="keras-arcface-serve-", suffix=".log")[1])
        self.process = None

    def start(self, timeout=120, wait=True):
        command = [sys.executable, "-m", "keras_arcface.cli", "serve", *self.arguments]
        if "--port" not in self.arguments:
            command += ["--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited ({self.process.returncode}):\n{self.log_text()[-3000:]}")
            status, _ = self.get("/ready")
            if status == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the service was not ready in {timeout} s:\n{self.log_text()[-3000:]}")

    def get(self, path):
        """``(status, JSON body)`` of a GET; ``(None, None)`` when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None, None

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, text, timeout=60):
        """Wait until the service's log shows ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in the service's log after {timeout} s")
            time.sleep(0.01)

    def _signal(self, number, timeout):
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, number)
        except ProcessLookupError:
            return
        self.process.wait(timeout=timeout)

    def stop(self, timeout=60):
        self._signal(signal.SIGTERM, timeout)

    def kill(self):
        self._signal(signal.SIGKILL, 30)
        try:  # workers of a killed supervisor go with the group
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self):
        return self.start() if self.process is None else self

    def __exit__(self, *exc):
        self.stop()
        if self.process is not None and self.process.poll() is None:
            self.kill()
