"""One run per folder: a second ``train`` or ``lr-find`` on a folder that a live process trains into stops at once.

The lock is an OS file lock (``filelock``: ``flock`` on POSIX) on ``<output>/run.lock``, held for the whole
command, so the kernel releases it when its holder dies, SIGKILL included: a lock left by a killed process is
taken over by the next run with no stale-lock guessing.  Beside it, ``run.lock.json`` names the holder (command,
pid, host, since when, its cluster) for the message a refused process prints; it is removed when the run ends.

In a cluster the chief holds the lock.  Every other worker checks it: it stops when the holder file names another
cluster whose process is alive on this host (on another host liveness cannot be judged, and the chief of a second
cluster stops at the lock itself).  Imports neither TensorFlow nor Keras.
"""

import contextlib
import datetime
import json
import os
import pathlib
import socket

import filelock

from keras_arcface.errors import InputError
from keras_arcface.files import read_json_object, write_text_atomically

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.json"


class RunFolderBusyError(InputError):
    """Another live process trains into the folder (the message names it)."""


def read_holder(output):
    """The holder record of ``output``'s lock (``{}`` when there is none or it cannot be read)."""
    return read_json_object(pathlib.Path(output) / HOLDER_FILE)


def _alive_here(holder):
    """The holder's process runs on this host (a pid cannot be judged on another host)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _busy(output, command, holder):
    who = (f"{holder.get('command', 'a run')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since "
           f"{holder.get('since', '?')})" if holder else "another process (it has not said which yet)")
    return RunFolderBusyError(f"{output} is being trained into by {who}: one run per folder; wait for it to finish, "
                              f"stop it, or give this {command} another output_dir",
                              f"{output} is being trained into by {who}: one run per folder; wait for it to finish, "
                              f"stop it, or give this {command} another --output")


@contextlib.contextmanager
def run_folder_lock(output, command="train", cluster=None):
    """Hold ``output``'s run lock for the block (the chief of ``cluster``, or a single process); a worker of
    ``cluster`` checks the holder instead.  Raises :class:`RunFolderBusyError` naming the holder at once."""
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if cluster is not None and not cluster.is_chief:
        holder = read_holder(output)
        if holder and holder.get("cluster") != cluster.key and _alive_here(holder):
            raise _busy(output, command, holder)
        yield
        return
    lock = filelock.FileLock(str(output / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise _busy(output, command, read_holder(output)) from None
    try:
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        write_text_atomically(output / HOLDER_FILE, json.dumps(
            {"command": command, "pid": os.getpid(), "host": socket.gethostname(), "since": since,
             "cluster": cluster.key if cluster is not None else ""}))
        yield
    finally:
        (output / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()
