"""The gallery a service process serves, kept in step with every other process that writes it.

A gallery file (``.npz``) is read again whenever it changed on disk (another worker enrolled), and written under
its file lock, read fresh, one atomic replace per request: every worker sees every acknowledged enrollment, and a
process killed mid-request leaves the file as it was.  A Milvus gallery is the database's: workers hold only a
connection (a Milvus Lite ``.db`` serves one process)."""

import contextlib
import os
import threading

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.gallery import gallery_file, gallery_lock, is_database, new_gallery, open_gallery


class NoGalleryError(InputError):
    """No gallery yet at the service's location (nothing enrolled), or none configured."""

    status = 404


class ServedGallery:
    """The gallery at ``location`` for one service process (see the module docstring): :meth:`read` gives the
    current one (None: none yet), :meth:`enroll` and :meth:`remove` change it for every process."""

    def __init__(self, location):
        self.location = str(location)
        self.database = is_database(self.location)
        self._path = None if self.database else gallery_file(self.location)
        self._writing = threading.Lock()  # this process's writers (the file lock orders processes)
        self._reading = threading.Lock()
        self._current, self._signature = None, None

    def _file_signature(self):
        try:
            status = os.stat(self._path)
        except FileNotFoundError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino

    def read(self):
        """The gallery as it is now, or None when there is none yet."""
        with self._reading:
            if self.database:
                if self._current is not None and not self._current.present():
                    self._current.close()
                    self._current = None
                if self._current is None:
                    self._current = open_gallery(self.location, missing_ok=True)
                return self._current
            signature = self._file_signature()
            if signature != self._signature:
                self._current = None if signature is None else open_gallery(self._path)
                self._signature = signature
            return self._current

    def enroll(self, embeddings, identity, files, contents, qualities, model, threshold, threshold_source):
        """Add the faces of one request, all or none: ``(added, already held)``.  ``contents`` are the photos'
        content hashes (``sha256:...``): a photo the gallery holds already (under any name) is not added again,
        so a retried request adds nothing twice."""
        with self._writing, gallery_lock(self.location), self._forgotten_on_failure():
            gallery = self.read()
            if gallery is not None and gallery.model and gallery.model != model:
                raise InputError(f"the gallery holds {gallery.model}'s embeddings; this service embeds with {model}")
            known = set() if gallery is None else gallery.held_contents(contents)
            new = []  # the photos to add: not held, and each once (the same photo twice in a request is one)
            for number, content in enumerate(contents):
                if content not in known:
                    known.add(content)
                    new.append(number)
            if new:
                rows = (np.asarray(embeddings)[new], [identity] * len(new), [files[i] for i in new],
                        [f"{contents[i]}#1" for i in new], [qualities[i] for i in new])
                if gallery is None:
                    gallery = new_gallery(self.location, *rows, model=model, threshold=threshold,
                                          threshold_source=threshold_source)
                else:
                    gallery.add(*rows)
                    gallery.commit()
            self._settle(gallery)
            return len(new), len(contents) - len(new)

    def remove(self, identity):
        """Remove every face of ``identity``; the number removed.  Removing the last identity removes the
        gallery (it holds at least one face)."""
        with self._writing, gallery_lock(self.location), self._forgotten_on_failure():
            gallery = self.read()
            held = {} if gallery is None else gallery.people()
            if identity not in held:
                raise KeyError(identity)
            if len(held) == 1:
                self._drop(gallery)
                return held[identity]
            removed = gallery.remove(identity=identity)
            gallery.commit()
            self._settle(gallery)
            return removed

    @contextlib.contextmanager
    def _forgotten_on_failure(self):
        """A write that fails may leave the gallery held in memory changed but not written: forget it, so the next
        read reads what is on disk.  (Under the file lock, :meth:`read` sees any other process's write by the
        file's signature: an atomic replace makes a new file.)"""
        try:
            yield
        except BaseException:
            with self._reading:
                if not self.database:
                    self._current, self._signature = None, None
            raise

    def _settle(self, gallery):
        with self._reading:
            if not self.database:
                self._signature = self._file_signature()
            self._current = gallery

    def _drop(self, gallery):
        with self._reading:
            if self.database:
                gallery.delete()
            else:
                os.remove(self._path)
            self._current, self._signature = None, None

    def close(self):
        with self._reading:
            if self.database and self._current is not None:
                self._current.close()
            self._current = None
