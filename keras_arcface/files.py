"""Writing outputs so that a failure leaves nothing a later run could mistake for a finished one.

Every file a command produces is written under a temporary name beside its destination and
renamed into place when complete (``os.replace``: atomic on one file system).
"""

import contextlib
import os
import pathlib
import shutil
import tempfile

#: The files of a model folder (a training run, a converted model, a zoo model).
CONFIG_FILE = "config.json"
BACKBONE_WEIGHTS = "backbone.weights.h5"
TRAINING_WEIGHTS = "training_model.weights.h5"
LABEL_MAP = "label_map.json"
THRESHOLD_FILE = "threshold.json"


def umask_mode(mode=0o666):
    """``mode`` as the process' umask leaves it: what ``open()`` would create.  A temporary file made by
    ``tempfile`` is 0600 whatever the umask; a file renamed into place gets this mode first."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path`` (with the mode the umask
    gives a new file), on failure removed.

    The temporary name keeps ``path``'s suffixes (writers that choose a format by suffix still work).
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem.split('.')[0]}.partial-", suffix="".join(path.suffixes),
                                    dir=path.parent)
    os.close(handle)
    temporary = pathlib.Path(name)
    try:
        yield temporary
        os.chmod(temporary, umask_mode())  # the user's umask, as a plain open() would give
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_json_object(path):
    """The JSON object (a dict) in ``path``; ``{}`` when the file is missing, unreadable or holds something else."""
    import json

    try:
        value = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_text_atomically(path, text):
    """``path.write_text(text)``, all or nothing."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


@contextlib.contextmanager
def staged_folder(output):
    """Yield an empty temporary folder beside ``output``; on success its entries move into ``output``
    (replacing entries of the same name), on failure it is removed and ``output`` is untouched."""
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        yield staging
        output.mkdir(exist_ok=True)
        for entry in sorted(staging.iterdir()):
            target = output / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
