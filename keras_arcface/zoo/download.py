"""Where each model file comes from (one resolver), and verified, cached, lock-protected downloads.

For a model's artifact the zoo looks, in order: the file bundled with the wheel (the default model's
runtime file), an installed model package (``pip install keras-arcface-model-<name>``:
:mod:`keras_arcface.zoo.packages`), the cache, then the mirrors; every file, wherever it is, is checked
against the card's size and sha256 each time it is used.  :func:`locate` says where a file would come
from now without fetching it (``keras-arcface zoo list``); :func:`fetch_artifact` gets it.

A mirror is a base URL (``https://...``, ``http://...``, ``file://...``) or a local folder laid out
as ``<mirror>/<model name>/<file>``.  A file is streamed to a temporary ``.part`` file beside its
cache entry, its size and sha256 are checked against the model card, and only then is it renamed
into place (atomic on one file system).  A partial or corrupt download is never left in the cache
and never returned; a cached file is re-checked (size and sha256) every time it is used.  A file
lock serialises processes that fetch the same file.  Imports neither TensorFlow nor Keras.

The wheel installs the default model's runtime file under ``keras_arcface/zoo/bundled/``; it is
used in place (verified the same way), offline too, so ``verify`` works right after ``pip install``.

Environment: ``KERAS_ARCFACE_ZOO_URLS`` (mirrors, separated by spaces or commas),
``KERAS_ARCFACE_CACHE`` (cache folder; default ``$XDG_CACHE_HOME/keras-arcface`` or
``~/.cache/keras-arcface``), ``KERAS_ARCFACE_OFFLINE=1`` (use the cache only).
"""

import dataclasses
import hashlib
import http.client
import os
import pathlib
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import filelock

from keras_arcface.errors import InputError
from keras_arcface.files import umask_mode

URLS_ENV = "KERAS_ARCFACE_ZOO_URLS"
CACHE_ENV = "KERAS_ARCFACE_CACHE"
OFFLINE_ENV = "KERAS_ARCFACE_OFFLINE"
CHUNK = 1 << 20
STALE_PART_SECONDS = 3600


class ZooDownloadError(InputError, RuntimeError):
    """No source gave a file that matches its model card (each mirror's failure is listed)."""


class ZooOfflineError(ZooDownloadError):
    """Offline mode and the file is not (validly) in the cache."""


def cache_root(cache_dir=None):
    """The cache folder: the argument, ``$KERAS_ARCFACE_CACHE``, ``$XDG_CACHE_HOME/keras-arcface``,
    or ``~/.cache/keras-arcface``."""
    if cache_dir:
        return pathlib.Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(xdg) / "keras-arcface"


#: Files installed with the wheel, laid out as a mirror (<model name>/<file>): the default model's runtime file.
BUNDLED_DIR = pathlib.Path(__file__).parent / "bundled"


def default_mirrors():
    """The repository's ``saved_models/`` folder when running from a checkout (the project's local
    mirror); an installed package without a checkout has none (its bundled file needs no mirror;
    other files need ``KERAS_ARCFACE_ZOO_URLS``)."""
    checkout = pathlib.Path(__file__).resolve().parents[2] / "saved_models"
    return [str(checkout)] if checkout.is_dir() else []


def bundled_file(model_name, artifact):
    """The verified copy of ``artifact`` installed with the package, or None."""
    path = BUNDLED_DIR / model_name / artifact.file
    return path if is_valid(path, artifact) else None


def installed_file(model_name, artifact):
    """``(verified path or None, the installed package or None)`` of ``artifact`` in an installed model package."""
    from keras_arcface.zoo.packages import installed_models

    package = installed_models().get(model_name)
    if package is None:
        return None, None
    path = package.file(artifact.file)
    return (path if is_valid(path, artifact) else None), package


#: Where a file can come from, in the resolver's order (and "not available").
SOURCES = ("bundled", "installed", "cached", "mirror", "not available")


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a model's file comes from now: ``source`` (one of :data:`SOURCES`), ``path`` (the local file, for
    bundled / installed / cached), ``detail`` (the package and version, the mirror, or why not), and for
    "not available" the ``cli_hint`` / ``python_hint`` that make it available."""

    source: str
    path: str = ""
    detail: str = ""
    cli_hint: str = ""
    python_hint: str = ""


def availability_hints(model_name, artifacts, package=None):
    """``(cli, python)``: what makes ``artifacts`` (one or a list) of ``model_name`` available, as a command
    and as Python."""
    from keras_arcface.zoo.packages import distribution_name

    artifacts = [artifacts] if not isinstance(artifacts, (list, tuple)) else list(artifacts)
    pip = (f"pip install {distribution_name(model_name)} (from your model index or wheelhouse: add --index-url URL "
           "or --find-links DIR)")
    if package is not None:
        absent = [a.file for a in artifacts if not package.file(a.file).exists()]
        differ = [a.file for a in artifacts if package.file(a.file).exists()]
        said = ([f"was packed without {', '.join(absent)}"] if absent else []) + (
            [f"carries {', '.join(differ)} in another version than this card's sha256"] if differ else [])
        pip = (f"{package.distribution} {package.version} is installed but {' and '.join(said)}: install the model "
               f"package built with {'those formats' if absent else 'this card'} (pip install --force-reinstall "
               f"{distribution_name(model_name)}=={package.version} from your index or wheelhouse)")
    where = f"a base URL or folder holding {model_name}/{artifacts[0].file}"
    formats = " ".join(a.format for a in artifacts)
    return (f"{pip}, or keras-arcface zoo download {model_name} --format {formats} --url MIRROR ({where})",
            f"{pip}, or pass urls=[MIRROR] ({where}) or set {URLS_ENV}")


def source_of(model_name, path):
    """The :data:`SOURCES` entry of a verified local file of ``model_name``: bundled, installed or cached."""
    from keras_arcface.zoo.packages import installed_models

    path = pathlib.Path(path)
    if BUNDLED_DIR in path.parents:
        return "bundled"
    package = installed_models().get(model_name)
    return "installed" if package is not None and package.folder in path.parents else "cached"


def local_copy(model_name, artifact, cache_dir=None):
    """``(Location or None, the installed package or None)``: the first verified local copy of ``artifact`` in
    the resolver's order (bundled, installed package, cache), for :func:`locate` and :func:`fetch_artifact`."""
    bundled = bundled_file(model_name, artifact)
    if bundled is not None:
        return Location("bundled", str(bundled), f"with keras-arcface, {bundled}"), None
    installed, package = installed_file(model_name, artifact)
    if installed is not None:
        return Location("installed", str(installed), f"{package.distribution} {package.version}, {installed}"), package
    cached = cache_root(cache_dir) / model_name / artifact.file
    if is_valid(cached, artifact):
        return Location("cached", str(cached), str(cached)), package
    return None, package


def locate(model_name, artifact, urls=None, cache_dir=None, offline=None):
    """The :class:`Location` ``artifact`` of ``model_name`` would come from now, without fetching it: a local
    file is checked (size and sha256), a mirror folder for the file's presence, a mirror URL not at all."""
    local, package = local_copy(model_name, artifact, cache_dir)
    if local is not None:
        return local
    cli_hint, python_hint = availability_hints(model_name, artifact, package)
    if is_offline(offline):
        return Location("not available", "", f"offline ({OFFLINE_ENV}) and not in the cache", cli_hint, python_hint)
    for mirror in mirror_list(urls):
        url = artifact_url(mirror, model_name, artifact.file)
        if "://" not in url and not (os.path.isfile(url) and os.path.getsize(url) == artifact.size):
            continue
        return Location("mirror", "", url)
    return Location("not available", "", "no bundled, installed, cached or mirrored copy", cli_hint, python_hint)


def mirror_list(urls=None):
    """Mirrors to try, in order: the argument (a string or a list), ``$KERAS_ARCFACE_ZOO_URLS``, the defaults."""
    if urls is None:
        urls = os.environ.get(URLS_ENV) or default_mirrors()
    if isinstance(urls, (str, pathlib.Path)):
        urls = [u for u in re.split(r"[\s,]+", str(urls)) if u]
    return [str(u) for u in urls]


def is_offline(offline=None):
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_valid(path, artifact):
    """The file exists with the card's size and sha256."""
    path = pathlib.Path(path)
    return path.is_file() and path.stat().st_size == artifact.size and sha256_of(path) == artifact.sha256


def artifact_url(mirror, model_name, file_name):
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", mirror):
        return f"{mirror.rstrip('/')}/{urllib.parse.quote(model_name)}/{urllib.parse.quote(file_name)}"
    return str(pathlib.Path(mirror).expanduser() / model_name / file_name)


class _FetchFailed(Exception):
    pass


def _open(url, timeout):
    """(readable stream, announced length or None) for a URL or a local path."""
    if "://" not in url:
        if not os.path.isfile(url):
            raise _FetchFailed("no such file")
        return open(url, "rb"), os.path.getsize(url)
    request = urllib.request.Request(url, headers={"User-Agent": "keras-arcface"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        hint = ("the mirror does not have this file" if error.code == 404 else
                "the server failed; try again later or another mirror" if error.code >= 500 else
                "the server refused the request")
        raise _FetchFailed(f"HTTP {error.code} {error.reason} ({hint})") from None
    except urllib.error.URLError as error:
        raise _FetchFailed(f"cannot connect: {error.reason}") from None
    except (socket.timeout, TimeoutError):
        raise _FetchFailed(f"no response within {timeout} s") from None
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def _progress_bar(total, label, progress):
    show = sys.stderr.isatty() if progress is None else bool(progress)
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=sys.stderr)


def _stream(url, artifact, part, timeout, progress):
    """Copy ``url`` into the open temporary file ``part``; check length and sha256."""
    stream, announced = _open(url, timeout)
    digest, received = hashlib.sha256(), 0
    bar = _progress_bar(artifact.size, artifact.file, progress)
    try:
        with stream:
            while True:
                try:
                    chunk = stream.read(CHUNK)
                except (socket.timeout, TimeoutError):
                    raise _FetchFailed(f"stalled: no data for {timeout} s after {received} of "
                                       f"{artifact.size} bytes") from None
                except http.client.IncompleteRead as error:
                    received += len(error.partial)
                    raise _FetchFailed(f"connection closed after {received} of {artifact.size} bytes "
                                       "(truncated)") from None
                except (ConnectionError, http.client.HTTPException, OSError) as error:
                    raise _FetchFailed(f"connection lost after {received} bytes: {error}") from None
                if not chunk:
                    break
                digest.update(chunk)
                part.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                if received > artifact.size:
                    raise _FetchFailed(f"more than the card's {artifact.size} bytes: wrong file")
    finally:
        if bar is not None:
            bar.close()
    if announced is not None and received != announced:
        raise _FetchFailed(f"connection closed after {received} of {announced} bytes (truncated)")
    if received != artifact.size:
        raise _FetchFailed(f"got {received} bytes, the model card says {artifact.size} (truncated or "
                           "another version)")
    if digest.hexdigest() != artifact.sha256:
        raise _FetchFailed(f"sha256 mismatch: got {digest.hexdigest()}, the model card says "
                           f"{artifact.sha256} (corrupt, or another version of the file)")


def _remove_stale_parts(folder, file_name):
    for part in folder.glob(f"{file_name}.*.part"):
        try:
            if time.time() - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()
        except OSError:
            pass


def fetch_artifact(model_name, artifact, urls=None, cache_dir=None, offline=None, timeout=30.0,
                   progress=None, lock_timeout=900.0):
    """Local path of ``artifact`` of ``model_name``: the file bundled with the wheel, else an installed
    model package's, else the cache's (each checked like a cache entry; also offline), else downloaded
    from the first mirror that gives the right bytes.  See the module docstring."""
    local, package = local_copy(model_name, artifact, cache_dir)
    if local is not None:
        return pathlib.Path(local.path)
    cli_hint, python_hint = availability_hints(model_name, artifact, package)
    target = cache_root(cache_dir) / model_name / artifact.file
    if is_offline(offline):
        state = "is not"
        if target.exists():
            with filelock.FileLock(str(target) + ".lock", timeout=lock_timeout):
                if is_valid(target, artifact):  # another process fetched it while we waited
                    return target
                target.unlink(missing_ok=True)  # a corrupt cache entry is never left in the cache
            state = "was corrupt (removed) and is no longer"
        message = (f"offline mode ({OFFLINE_ENV}) and {model_name} {artifact.format} ({artifact.file}) {state} in the "
                   f"cache {target.parent}; ")
        raise ZooOfflineError(message + python_hint + f", with network access, or unset {OFFLINE_ENV}",
                              cli_message=message + cli_hint + f", with network access, or unset {OFFLINE_ENV}")
    mirrors = mirror_list(urls)
    if not mirrors:
        message = (f"{model_name} {artifact.format} ({artifact.file}) is not bundled, installed or cached, and no "
                   "mirror is configured: ")
        raise ZooDownloadError(message + python_hint, cli_message=message + cli_hint)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(target.parent, os.W_OK):
            raise PermissionError(13, "not writable", str(target.parent))
        lock = filelock.FileLock(str(target) + ".lock", timeout=lock_timeout)
        lock.acquire()
    except filelock.Timeout:
        raise
    except OSError as error:  # a read-only home, as in many containers
        return _in_place_or_say_where_the_cache_goes(model_name, artifact, mirrors, target.parent, error)
    try:
        if is_valid(target, artifact):  # another process fetched it while we waited
            return target
        if target.exists():
            target.unlink()  # a corrupt cache entry is never used
        _remove_stale_parts(target.parent, artifact.file)
        failures = []
        for mirror in mirrors:
            url = artifact_url(mirror, model_name, artifact.file)
            part = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f"{artifact.file}.", suffix=".part",
                                               delete=False)
            try:
                with part:
                    _stream(url, artifact, part, timeout, progress)
                    part.flush()
                    os.fsync(part.fileno())
                os.chmod(part.name, umask_mode())  # the user's umask, not tempfile's 0600
                os.replace(part.name, target)
                return target
            except _FetchFailed as error:
                failures.append(f"{url}: {error}")
            finally:
                if os.path.exists(part.name):
                    os.unlink(part.name)
    finally:
        lock.release()
    listing = "\n  ".join(failures)
    message = (f"could not get {model_name} {artifact.format} ({artifact.file}, {artifact.size} bytes, sha256 "
               f"{artifact.sha256[:12]}...) from any mirror:\n  {listing}\nCheck the mirrors ({URLS_ENV}) or your "
               "network; nothing was written to the cache.  Else: ")
    raise ZooDownloadError(message + python_hint, cli_message=message + cli_hint)


def _in_place_or_say_where_the_cache_goes(model_name, artifact, mirrors, folder, error):
    """The cache cannot be written: the file of a local mirror folder (a checkout's ``saved_models/``),
    verified, used in place; else one error naming the setting that moves the cache."""
    for mirror in mirrors:
        path = artifact_url(mirror, model_name, artifact.file)
        if "://" not in path and is_valid(path, artifact):
            return pathlib.Path(path)
    reason = getattr(error, "strerror", None) or str(error)
    message = (f"the cache folder {folder} cannot be written ({reason}) and {model_name} {artifact.format} "
               f"({artifact.file}) is not bundled, installed or in a local mirror folder: point the cache at a "
               f"writable folder with {CACHE_ENV}=DIR or ")
    raise ZooDownloadError(message + "cache_dir=", cli_message=message + "--cache-dir DIR")


def clear_cache(model_name=None, cache_dir=None):
    """Remove one model's cached files, or the whole cache."""
    folder = cache_root(cache_dir) / model_name if model_name else cache_root(cache_dir)
    if folder.exists():
        shutil.rmtree(folder)
