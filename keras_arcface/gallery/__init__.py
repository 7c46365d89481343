"""1:N identification: galleries of labelled face embeddings and the search over them.

    index, added, held = enrol("gallery.npz", "people/")   # people/<name>/<photo>; again: adds what is new
    open_gallery("gallery.npz").identify("photo.jpg", top_k=5)

One contract (:class:`~keras_arcface.gallery.base.Gallery`), three back-ends:

- ``numpy`` (default): a gallery file (``.npz``, written atomically) searched exactly, one matrix product;
- ``faiss``: the same file searched through a FAISS HNSW graph (``pip install keras-arcface[faiss]``):
  approximate, for millions of faces on one machine;
- Milvus (:mod:`keras_arcface.gallery.milvus`, ``pip install keras-arcface[milvus]``): a server or cluster
  (``milvus://host:19530/faces``), or a local Milvus Lite folder (``faces.db``): past one machine.

Their speed, memory and recall against exact search: ``scripts/gallery_benchmark.py`` (docs/verification.md).
"""

import concurrent.futures
import contextlib
import functools
import json
import pathlib
import sys
import time

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.gallery.base import (  # noqa: F401 (Match and the HNSW parameters are this module's API too)
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_NEIGHBOURS,
    Gallery,
    Match,
    check_removal,
    check_rename,
)

#: The in-process search back-ends of a gallery file; a Milvus gallery (a ``milvus://`` URI or a Milvus Lite
#: ``.db`` file) searches in the database (:mod:`keras_arcface.gallery.milvus`).
BACKENDS = ("numpy", "faiss")
#: Exact search scores at most this many (query, entry) pairs at once (4 MB of float32 scores: the
#: selection of the best k then runs in cache; measured faster per query than larger blocks).
EXACT_CHUNK = 1 << 20


class FaceIndex(Gallery):
    """The file back-end of :class:`Gallery`: labelled unit embeddings (N, d) in memory, searched exactly
    (``backend="numpy"``) or through a FAISS HNSW graph (``"faiss"``), saved as one ``.npz`` written atomically
    (:meth:`save`, :meth:`commit` to the file it was loaded from).  ``search`` gives the nearest entries'
    numbers; ``identify`` the nearest identities, "unknown" below ``threshold``.  ``model`` names the model that
    made them; queries must come from the same model."""

    def __init__(self, embeddings, identities, files=None, model="", threshold=None, threshold_source="",
                 backend="numpy", ef_search=HNSW_EF_SEARCH, hashes=None, qualities=None, added=None, path=None):
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or len(embeddings) == 0:
            raise InputError(f"a gallery needs embeddings of shape (N, d) with N >= 1, got {embeddings.shape}")
        if len(identities) != len(embeddings):
            raise InputError(f"{len(identities)} identities for {len(embeddings)} embeddings")
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if int(ef_search) < 1:
            raise InputError(f"ef_search (FAISS HNSW's search width) must be >= 1, got {ef_search!r}")
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        self.embeddings = embeddings / np.maximum(norms, 1e-12)
        self.identities = np.asarray(identities, str)
        self.files = np.asarray(files if files is not None else [""] * len(embeddings), str)
        #: Each entry's photo content ("sha256:<hex>#<face number>"; empty when unknown): what enrolment skips.
        self.hashes = np.asarray(hashes if hashes is not None else [""] * len(embeddings), str)
        #: Each entry's face quality (NaN: not recorded), and when it was added (seconds since 1970; 0: not recorded).
        self.qualities = np.asarray(qualities if qualities is not None else [np.nan] * len(embeddings), np.float32)
        self.added = np.asarray(added if added is not None else [0.0] * len(embeddings), np.float64)
        if {len(self.files), len(self.hashes), len(self.qualities), len(self.added)} != {len(embeddings)}:
            raise InputError(f"{len(self.files)} files, {len(self.hashes)} hashes, {len(self.qualities)} qualities "
                             f"and {len(self.added)} times for {len(embeddings)} embeddings")
        #: The file :meth:`commit` writes (set by :meth:`load` and :func:`enrol`; None: in memory only).
        self.path = None if path is None else gallery_file(path)
        self.model, self.threshold, self.threshold_source = model, threshold, threshold_source
        self.backend, self.ef_search = backend, int(ef_search)
        self._faiss = self._build_faiss() if backend == "faiss" else None

    def __len__(self):
        return len(self.embeddings)

    def _build_faiss(self):
        try:
            import faiss
        except ImportError:
            raise InputError("backend='faiss' needs FAISS: pip install faiss-cpu "
                             "(or keras-arcface[faiss])") from None
        index = faiss.IndexHNSWFlat(self.embeddings.shape[1], HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = self.ef_search
        index.add(self.embeddings)
        return index

    def add(self, embeddings, identities, files=None, hashes=None, qualities=None, added=None):
        """Append entries (see :meth:`Gallery.add`); the FAISS graph takes them as they come."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        if embeddings.shape[1] != self.embeddings.shape[1] or len(identities) != len(embeddings):
            raise InputError(f"{len(identities)} identities for embeddings of shape {embeddings.shape}; the gallery "
                             f"holds {self.embeddings.shape[1]}-d embeddings of {self.model or 'its model'}")
        embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        self.embeddings = np.concatenate([self.embeddings, embeddings])
        self.identities = np.concatenate([self.identities, np.asarray(identities, str)])
        self.files = np.concatenate([self.files, np.asarray(files if files is not None else [""] * len(embeddings),
                                                                str)])
        self.hashes = np.concatenate([self.hashes, np.asarray(hashes if hashes is not None
                                                              else [""] * len(embeddings), str)])
        self.qualities = np.concatenate([self.qualities, np.asarray(qualities if qualities is not None
                                                                    else [np.nan] * len(embeddings), np.float32)])
        self.added = np.concatenate([self.added, np.full(len(embeddings), time.time()) if added is None
                                     else np.asarray(added, np.float64)])
        if self._faiss is not None:
            self._faiss.add(embeddings)

    def remove(self, identity=None, file=None):
        """Remove every entry of ``identity``, or the entries of ``file``; the number removed.  FAISS's HNSW
        graph cannot delete, so it is built again from what is left.  Removing the last entry is refused (a
        gallery holds at least one face: delete the file instead)."""
        check_removal(identity, file)
        gone = self.identities == identity if identity is not None else self.files == str(file)
        check_removal(identity, file, int(gone.sum()), len(self))
        keep = ~gone
        self.embeddings, self.identities = self.embeddings[keep], self.identities[keep]
        self.files, self.hashes = self.files[keep], self.hashes[keep]
        self.qualities, self.added = self.qualities[keep], self.added[keep]
        if self._faiss is not None:
            self._faiss = self._build_faiss()
        return int(gone.sum())

    def rename(self, identity, new_name):
        check_rename(identity, new_name, (self.identities == identity).any())
        self.identities = np.where(self.identities == identity, str(new_name).strip(), self.identities)

    def record_hashes(self, hashes):
        """Set the content hashes of entries ``{position: hash}`` (entries of a gallery from before hashes)."""
        values = self.hashes.tolist()
        for position, value in hashes.items():
            values[position] = value
        self.hashes = np.asarray(values, str)

    def people(self):
        names, counts = np.unique(self.identities, return_counts=True)
        return dict(zip(names.tolist(), counts.tolist()))

    def stats(self):
        return {**super().stats(), "dimensions": int(self.embeddings.shape[1]), "backend": self.backend,
                "file": None if self.path is None else str(self.path),
                "with_content_hash": int((self.hashes != "").sum())}

    def entries(self):
        for i in range(len(self)):
            yield {"identity": str(self.identities[i]), "file": str(self.files[i]), "hash": str(self.hashes[i]),
                   "quality": float(self.qualities[i]), "added": float(self.added[i]),
                   "embedding": self.embeddings[i]}

    def held_contents(self, contents):
        held = {entry.split("#")[0] for entry in self.hashes.tolist() if entry}
        return held & set(contents)

    def unhashed_files(self):
        return {file: i for i, (file, entry) in enumerate(zip(self.files.tolist(), self.hashes.tolist())) if not entry}

    def present(self):
        return self.path is not None and gallery_file(self.path).is_file()

    def commit(self):
        if self.path is None:
            raise InputError("this gallery has no file yet: save(path) writes one")
        self.save(self.path)

    def search(self, queries, k=5):
        """``(similarities, indices)``, each (Q, k), best first, for unit query embeddings (Q, d) or (d,)."""
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        if queries.shape[1] != self.embeddings.shape[1]:
            raise InputError(f"queries have {queries.shape[1]} dimensions, the gallery {self.embeddings.shape[1]}: "
                             f"embed them with the gallery's model ({self.model or 'unknown'})")
        k = min(int(k), len(self))
        if self._faiss is not None:
            self._faiss.hnsw.efSearch = max(self.ef_search, k)
            similarities, indices = self._faiss.search(np.ascontiguousarray(queries), k)
            return similarities, indices
        step = max(1, EXACT_CHUNK // len(self))
        parts = [self._exact(queries[start:start + step], k) for start in range(0, len(queries), step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _exact(self, queries, k):
        scores = queries @ self.embeddings.T
        if k < len(self):
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(len(self)), (len(queries), 1))
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        indices = np.take_along_axis(top, order, axis=1)
        return np.take_along_axis(scores, indices, axis=1), indices

    def nearest(self, queries, k=5):
        similarities, indices = self.search(queries, k)
        return [[Match(str(self.identities[i]), float(similarity), str(self.files[i]))
                 for similarity, i in zip(row_similarities, row_indices) if i >= 0]
                for row_similarities, row_indices in zip(similarities, indices)]

    @classmethod
    def build(cls, folder, verifier=None, backend="numpy", on_skip=None):
        """The gallery of ``folder/<identity>/<photo>`` (or of a list of such photo paths: the folder each is in
        names its person): every photo's face found, aligned and embedded by ``verifier`` (a
        :class:`~keras_arcface.verification.FaceVerifier`; default: the zoo's default model).  Unusable photos
        are skipped and passed to ``on_skip(path, reason)``; the list of ``(path, reason)`` is ``index.skipped``.
        A photo showing several faces enrols the one the verifier chooses, and a face below
        :data:`~keras_arcface.alignment.quality.GOOD_QUALITY` is enrolled (unless the verifier's ``min_quality``
        refuses it): both are listed in ``index.notes`` as ``(path, what was used)``."""
        photos = [photo for photo, _ in photos_of(folder)]
        root = pathlib.Path(folder) if isinstance(folder, (str, pathlib.Path)) else None
        return cls._built(photos, verifier, backend, on_skip, root=root)

    @classmethod
    def _built(cls, photos, verifier, backend, on_skip, root):
        """The gallery of ``photos`` (each in its person's folder); ``files`` relative to ``root`` when given."""
        if verifier is None:
            from keras_arcface.verification import FaceVerifier

            verifier = FaceVerifier()
        from keras_arcface.verification import collect_faces

        notes = []

        def face_of(path):
            return enrolment_face(verifier, path, lambda photo, what: notes.append((photo, what))).aligned

        faces, kept, skipped = collect_faces(photos, face_of, on_skip)
        identities = [path.parent.name for path in kept]
        files = [str(path.relative_to(root)) if root is not None else str(path) for path in kept]
        if not faces:
            raise InputError(f"no usable photo among {len(photos)} in {root or 'the photos given'} (first: "
                             f"{skipped[0][0]}: {skipped[0][1]})")
        embeddings = np.concatenate([verifier.embedder.embed(np.stack(faces[i:i + 64]))
                                     for i in range(0, len(faces), 64)])
        model = str(verifier.embedder.reference)
        index = cls(embeddings, identities, files, model=model, threshold=verifier.threshold,
                    threshold_source=verifier.threshold_source, backend=backend)
        index.skipped, index.notes = skipped, notes
        return index

    def save(self, path):
        """An ``.npz`` (embeddings, identities, files, hashes, qualities, times added, and the model and threshold
        as JSON), written atomically; no pickles."""
        from keras_arcface.files import atomic_path

        path = gallery_file(path)
        meta = json.dumps({"model": self.model, "threshold": self.threshold,
                           "threshold_source": self.threshold_source})
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, embeddings=self.embeddings, identities=self.identities, files=self.files,
                     hashes=self.hashes, qualities=self.qualities, added=self.added, meta=np.array(meta))
        return path

    @classmethod
    def load(cls, path, backend="numpy", missing_ok=False):
        """The gallery file at ``path``; when there is none, an error (None with ``missing_ok``)."""
        import zipfile

        path = pathlib.Path(path)
        if not path.is_file():
            if missing_ok and not path.exists():
                return None
            raise InputError(f"gallery {path} not found: build one with `keras-arcface index FOLDER -o {path}`")
        rebuild = f"build it again with `keras-arcface index FOLDER -o {path}`"
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as handle:
                if handle.read(4) == b"PK\x03\x04":  # an archive's start without its end: cut short
                    raise InputError(f"{path} is a damaged gallery (truncated or corrupt archive): {rebuild}")
            raise InputError(f"{path} is not a gallery written by `keras-arcface index` (not an .npz archive)")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = sorted({"embeddings", "identities", "files", "meta"} - set(data.files))
                if missing:
                    raise InputError(f"{path} is not a gallery written by `keras-arcface index` (an .npz without "
                                     f"{', '.join(missing)})")
                arrays = {name: data[name] for name in ("embeddings", "identities", "files")}
                for later in ("hashes", "qualities", "added"):  # (galleries written before they were recorded)
                    arrays[later] = data[later] if later in data.files else None
                meta = json.loads(str(data["meta"]))
        except InputError:
            raise
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, json.JSONDecodeError):
            raise InputError(f"{path} is a damaged gallery (truncated or corrupt archive): {rebuild}") from None
        # Built outside the reading: a missing FAISS or bad contents are said as themselves, not as a bad file.
        return cls(arrays["embeddings"], arrays["identities"], arrays["files"], model=meta.get("model", ""),
                   threshold=meta.get("threshold"), threshold_source=meta.get("threshold_source", ""),
                   backend=backend, hashes=arrays["hashes"], qualities=arrays["qualities"], added=arrays["added"],
                   path=path)


def is_database(location):
    """A gallery in Milvus: a ``milvus://host:port/collection`` URI or a Milvus Lite ``.db`` file."""
    return str(location).startswith("milvus://") or str(location).endswith(".db")


def gallery_file(path):
    """A gallery file's path: ``.npz`` added when missing."""
    path = pathlib.Path(path)
    return path if path.suffix == ".npz" else pathlib.Path(f"{path}.npz")


def open_gallery(location, backend="numpy", missing_ok=False):
    """The gallery at ``location``: a file written by ``index`` (searched by ``backend``: numpy or faiss), a
    ``milvus://host:port/collection`` URI or a Milvus Lite ``.db`` file.  Close it (``with``) when done.  When
    there is none: an error, or None with ``missing_ok``."""
    if is_database(location):
        from keras_arcface.gallery.milvus import MilvusGallery

        return MilvusGallery.open(location, missing_ok=missing_ok)
    return FaceIndex.load(location, backend=backend, missing_ok=missing_ok)


def new_gallery(location, embeddings, identities, files=None, hashes=None, qualities=None, added=None, model="",
                threshold=None, threshold_source="", backend="numpy"):
    """A gallery at ``location`` holding these entries, committed: a file is written anew; a Milvus collection is
    made when missing (a writer that made it first shares it: :meth:`MilvusGallery.create`)."""
    if is_database(location):
        from keras_arcface.gallery.milvus import MilvusGallery

        gallery = MilvusGallery.create(location, np.asarray(embeddings).shape[1], model=model, threshold=threshold,
                                       threshold_source=threshold_source)
        gallery.add(embeddings, identities, files, hashes, qualities, added)
    else:
        added = np.full(len(identities), time.time()) if added is None else added
        gallery = FaceIndex(embeddings, identities, files, model=model, threshold=threshold,
                            threshold_source=threshold_source, backend=backend, hashes=hashes,
                            qualities=qualities, added=added, path=location)
    gallery.commit()
    return gallery


def gallery_lock(location):
    """The lock a writer of ``location`` holds from reading to its last write: the file's lock
    (``gallery.npz.lock``) for a gallery file; none for Milvus, whose galleries take their own (a Milvus Lite
    file serves one process at a time; a server orders its writers itself)."""
    if is_database(location):
        return contextlib.nullcontext()
    from filelock import FileLock

    return FileLock(f"{gallery_file(location)}.lock")


def copy_gallery(source, destination, batch=4096):
    """Copy every entry of the gallery ``source`` (a location of any back-end, or an open :class:`Gallery`, left
    open) into a new gallery ``destination`` (replacing it): how a gallery moves between a file and Milvus.
    Returns the new gallery."""
    replaced = open_gallery(destination, missing_ok=True) if is_database(destination) else None
    if replaced is not None:
        replaced.delete()
    with contextlib.nullcontext(source) if isinstance(source, Gallery) else open_gallery(source) as origin:
        rows = list(origin.entries())
        if not rows:
            raise InputError(f"{source} holds no faces to copy")
        names = ("identity", "file", "hash", "quality", "added")
        columns = {name: [row[name] for row in rows] for name in names}
        embeddings = np.stack([row["embedding"] for row in rows])
        target = new_gallery(destination, embeddings[:batch], *(columns[name][:batch] for name in names),
                             model=origin.model, threshold=origin.threshold, threshold_source=origin.threshold_source)
        for start in range(batch, len(rows), batch):
            target.add(embeddings[start:start + batch], *(columns[name][start:start + batch] for name in names))
        target.commit()
    return target


#: Enrolment saves the gallery after each this many photos: a killed run keeps every chunk it finished.
ENROL_CHUNK = 64
#: Threads reading the next chunk's photos (decoding, and finding the face: detection, alignment and quality, a
#: detector each) while the current chunk is embedded.
READERS = 2


def photos_of(folder):
    """``[(photo, identity)]`` of ``folder/<identity>/<photo>`` (sorted), or of a list of photo paths (the folder
    each is in names its person)."""
    from keras_arcface.data.images import IMAGE_EXTENSIONS

    if not isinstance(folder, (str, pathlib.Path)):
        photos = sorted(pathlib.Path(path) for path in folder)
        if not photos:
            raise InputError("no photos given to enrol in a gallery")
        return [(photo, photo.parent.name) for photo in photos]
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise InputError(f"gallery folder {folder} not found: pass a folder with one sub-folder of photos per person")
    photos = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not photos:
        raise InputError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in the sub-folders of {folder}: lay it out "
                         "as <folder>/<person>/<photo>")
    return [(photo, photo.parent.name) for photo in photos]


def _enrolment_face_or_error(verifier, photo):
    """A reader thread's work on one photo: ``(FoundFace or None, InputError or None, [(photo, note)])``; the
    notes are said by the main thread, in the photos' order."""
    notes = []
    try:
        return enrolment_face(verifier, photo, lambda *note: notes.append(note)), None, notes
    except InputError as error:
        return None, error, notes


def enrolment_face(verifier, photo, on_note=None, image=None):
    """The face ``verifier`` enrols from ``photo`` (its :class:`~keras_arcface.verification.FoundFace`): an
    aligned crop (the model's or ArcFace's size) as it is, as ``embed`` takes it, else the face detection finds
    and the verifier chooses.  ``on_note(photo, what was used)`` when the photo shows several faces or a face of
    low quality.  ``image``: the photo's RGB uint8 pixels when already read (``photo`` then names it).  Threads
    may call it at once (each finds faces with its own detector)."""
    from keras_arcface.alignment.quality import GOOD_QUALITY
    from keras_arcface.data.images import read_image

    image = read_image(photo) if image is None else image
    face = verifier.crop_as_is(image, str(photo))
    if face is None:
        face = verifier.find_face(image, str(photo), colour_order="RGB")
    verifier.check_quality(face)  # (find_face checks its own; a crop taken as is is checked here)
    if on_note is not None and (face.faces_found > 1 or face.quality.score < GOOD_QUALITY):
        on_note(str(photo), face.describe().removeprefix(f"{photo}: "))
    return face


def enrol(path, photos, verifier=None, backend="numpy", on_skip=None, on_note=None, rebuild=False):
    """Add the faces of ``photos`` (a folder ``<identity>/<photo>`` or a list of paths) to the gallery at ``path``
    (a file, made when missing or with ``rebuild``; or a Milvus URI / Milvus Lite ``.db``, see
    :func:`open_gallery`); ``(gallery, faces added, photos already held)``.

    A photo is known by its content (sha256), so a photo already enrolled, under any name or path, is skipped:
    the same command run again adds exactly what is missing.  The gallery is committed after each
    :data:`ENROL_CHUNK` photos (a file written atomically; Milvus rows keyed by content hash, so a chunk written
    twice is one chunk), so a run killed half way leaves whole faces only; a gallery file's lock is held from
    reading to the last save (Milvus: see :func:`gallery_lock`), so two processes enrolling at once lose nothing.
    ``on_skip(path, reason)`` gets unusable photos, ``on_note(path, what)`` photos with several faces or a
    low-quality face.  The gallery returned is open: close it (a Milvus Lite file serves one process at a time)."""
    path = path if is_database(path) else gallery_file(path)
    wanted = photos_of(photos)
    if not is_database(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    with gallery_lock(path):
        replaced = open_gallery(path, missing_ok=True) if rebuild and is_database(path) else None
        if replaced is not None:
            replaced.delete()
        index = None if rebuild else open_gallery(path, backend=backend, missing_ok=True)
        return _enrolled(index, path, photos, wanted, verifier, backend, on_skip, on_note)


def _enrolled(index, path, photos, wanted, verifier, backend, on_skip, on_note):
    """:func:`enrol`'s work on ``index`` (None: no gallery yet): ``(gallery, faces added, photos held)``.  The
    gallery it holds (the one given, or the one it made) is closed when it fails."""
    import tqdm

    from keras_arcface.zoo.download import sha256_of

    try:
        if verifier is None:
            from keras_arcface.verification import FaceVerifier

            verifier = FaceVerifier(index.model if index is not None and index.model else None)
        model = str(verifier.embedder.reference)
        if index is not None and index.model and index.model != model:
            raise InputError(f"{path} holds {index.model}'s embeddings: enrol with --model {index.model}, or start "
                             f"a new gallery (--rebuild) with {model}")
        contents = [f"sha256:{sha256_of(photo)}" for photo, _ in wanted]
        held = set() if index is None else index.held_contents(contents)
        # a gallery file written before content hashes: its entries are known by the file they came from
        unhashed = {} if index is None else index.unhashed_files()
        todo, backfilled = [], False
        for (photo, identity), content in zip(wanted, contents):
            file = str(photo.relative_to(photos)) if isinstance(photos, (str, pathlib.Path)) else str(photo)
            if file in unhashed:
                index.record_hashes({unhashed.pop(file): f"{content}#0"})  # its face number was not recorded
                held.add(content)
                backfilled = True
            if content not in held:
                todo.append((photo, identity, file, content))
                held.add(content)  # the same photo twice in one run is enrolled once
        added = 0
        chunks = [todo[start:start + ENROL_CHUNK] for start in range(0, len(todo), ENROL_CHUNK)]
        progress = tqdm.tqdm(total=len(todo), unit="photo", desc="enrolling", disable=not sys.stderr.isatty())
        face_of = functools.partial(_enrolment_face_or_error, verifier)
        with concurrent.futures.ThreadPoolExecutor(READERS) as readers, progress:
            reading = readers.map(face_of, [row[0] for row in chunks[0]]) if chunks else None
            for number, chunk in enumerate(chunks):
                found = list(reading)
                if number + 1 < len(chunks):  # the next chunk is read while this one is embedded
                    reading = readers.map(face_of, [row[0] for row in chunks[number + 1]])
                rows = []
                for (photo, identity, file, content), (face, failure, notes) in zip(chunk, found):
                    for note in notes if on_note is not None else ():
                        on_note(*note)
                    if failure is not None:
                        if on_skip is not None:
                            on_skip(str(photo), str(failure).removeprefix(f"{photo}: "))
                        continue
                    rows.append((face.aligned, identity, file, f"{content}#{face.number}", face.quality.score))
                progress.update(len(chunk))
                if not rows:
                    continue
                embeddings = verifier.embedder.embed(np.stack([row[0] for row in rows]))
                identities, files, hashes, qualities = ([row[i] for row in rows] for i in (1, 2, 3, 4))
                if index is None:
                    index = new_gallery(path, embeddings, identities, files, hashes, qualities, model=model,
                                        threshold=verifier.threshold, threshold_source=verifier.threshold_source,
                                        backend=backend)
                else:
                    index.add(embeddings, identities, files, hashes, qualities)
                    index.commit()
                added += len(rows)
        if index is None:
            raise InputError(f"no usable photo among {len(wanted)} to enrol in {path}")
        if backfilled and not added:  # (a commit after a chunk holds them already)
            index.commit()
        return index, added, len(wanted) - len(todo)
    except BaseException:
        if index is not None:
            index.close()
        raise
