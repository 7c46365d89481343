"""1:N identification: a gallery of labelled face embeddings and the search over it.

    index = FaceIndex.build("gallery/")              # one folder per person, raw photos
    index.save("gallery.npz")
    FaceIndex.load("gallery.npz").identify("photo.jpg", top_k=5)

Search is exact cosine similarity with numpy by default (one matrix product; every entry scored).
``backend="faiss"`` keeps the same API on a FAISS HNSW graph (``pip install keras-arcface[faiss]``):
approximate, for galleries where scoring every entry per query costs too much; its recall against
the exact search is measured by ``scripts/gallery_benchmark.py`` (see docs/verification.md).
"""

import concurrent.futures
import dataclasses
import json
import pathlib
import sys

import numpy as np

from keras_arcface.errors import InputError

BACKENDS = ("numpy", "faiss")
#: HNSW graph degree and build breadth of the FAISS backend, and its default search breadth
#: (``ef_search``; recall and speed against it measured in docs/verification.md).
HNSW_NEIGHBOURS, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 512
#: Exact search scores at most this many (query, entry) pairs at once (4 MB of float32 scores: the
#: selection of the best k then runs in cache; measured faster per query than larger blocks).
EXACT_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Match:
    """One candidate identity: its best similarity over its gallery entries, and that entry's file."""

    identity: str
    similarity: float
    file: str

    def to_dict(self):
        return {"identity": self.identity, "similarity": round(self.similarity, 6), "file": self.file}


class FaceIndex:
    """Labelled unit embeddings (N, d) with ``search`` (nearest entries) and ``identify`` (nearest
    identities, "unknown" below ``threshold``).  ``model`` names the model that made them; queries
    must come from the same model."""

    def __init__(self, embeddings, identities, files=None, model="", threshold=None, threshold_source="",
                 backend="numpy", ef_search=HNSW_EF_SEARCH, hashes=None):
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
        if len(self.files) != len(embeddings) or len(self.hashes) != len(embeddings):
            raise InputError(f"{len(self.files)} files and {len(self.hashes)} hashes for {len(embeddings)} embeddings")
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

    def add(self, embeddings, identities, files=None, hashes=None):
        """Append entries (embeddings (M, d) of the gallery's model, normalised here); the FAISS graph takes
        them as they come."""
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
        if self._faiss is not None:
            self._faiss.add(embeddings)

    def remove(self, identity=None, file=None):
        """Remove every entry of ``identity``, or the entries of ``file``; the number removed.  FAISS's HNSW
        graph cannot delete, so it is built again from what is left.  Removing the last entry is refused (a
        gallery holds at least one face: delete the file instead)."""
        if (identity is None) == (file is None):
            raise InputError("remove takes an identity or a file")
        gone = self.identities == identity if identity is not None else self.files == str(file)
        if not gone.any():
            what = f"identity {identity!r}" if identity is not None else f"file {file!r}"
            raise InputError(f"the gallery holds no {what}; `keras-arcface gallery list` shows what it holds")
        if gone.all():
            raise InputError("that would remove every face of the gallery: delete the gallery file instead")
        keep = ~gone
        self.embeddings, self.identities = self.embeddings[keep], self.identities[keep]
        self.files, self.hashes = self.files[keep], self.hashes[keep]
        if self._faiss is not None:
            self._faiss = self._build_faiss()
        return int(gone.sum())

    def rename(self, identity, new_name):
        """Give ``identity``'s entries the name ``new_name`` (merging them with its entries if it exists)."""
        if not (self.identities == identity).any():
            raise InputError(f"the gallery holds no identity {identity!r}")
        if not str(new_name).strip():
            raise InputError("a new name must not be empty")
        self.identities = np.where(self.identities == identity, str(new_name).strip(), self.identities)

    def record_hashes(self, hashes):
        """Set the content hashes of entries ``{position: hash}`` (entries of a gallery from before hashes)."""
        values = self.hashes.tolist()
        for position, value in hashes.items():
            values[position] = value
        self.hashes = np.asarray(values, str)

    def people(self):
        """``{identity: number of faces}``, by name."""
        names, counts = np.unique(self.identities, return_counts=True)
        return dict(zip(names.tolist(), counts.tolist()))

    def stats(self):
        return {"faces": len(self), "identities": len(self.people()), "dimensions": int(self.embeddings.shape[1]),
                "model": self.model, "threshold": self.threshold, "threshold_source": self.threshold_source,
                "backend": self.backend, "with_content_hash": int((self.hashes != "").sum())}

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

    def identify_embeddings(self, queries, top_k=5):
        """For each query, up to ``top_k`` :class:`Match` es, one per identity, best first."""
        if int(top_k) != top_k or top_k < 1:
            raise InputError(f"top_k must be an integer >= 1, got {top_k!r}", f"--top-k must be an integer >= 1, got "
                                                                              f"{top_k!r}")
        wanted = min(len(self), max(10 * top_k, 50))  # enough entries to find top_k distinct identities
        similarities, indices = self.search(queries, wanted)
        results = []
        for row_similarities, row_indices in zip(similarities, indices):
            matches, seen = [], set()
            for similarity, index in zip(row_similarities, row_indices):
                if index < 0 or self.identities[index] in seen:
                    continue
                seen.add(self.identities[index])
                matches.append(Match(str(self.identities[index]), float(similarity), str(self.files[index])))
                if len(matches) == top_k:
                    break
            results.append(matches)
        return results

    def identify(self, image, top_k=5, verifier=None):
        """The :class:`Match` es of the chosen face of a photo (path or RGB uint8 array), best first; the
        photo is embedded by ``verifier`` (default: one for the gallery's model)."""
        verifier = self._verifier_for(verifier)
        face = verifier.find_face(image)
        return self.identify_embeddings(verifier.embedder.embed(face.aligned[None]), top_k)[0]

    def identify_faces(self, image, top_k=5, verifier=None, face=None):
        """Who is in this photo: ``[(FoundFace, [Match, ...]), ...]`` for every face of the photo (or face
        number ``face`` alone), left to right.  Faces below the verifier's ``min_quality`` are not searched:
        they are ``(FoundFace, None)``."""
        verifier = self._verifier_for(verifier)
        faces = (verifier.find_face(image, face=face),) if face is not None else verifier.find_faces(image)
        usable = [f for f in faces if verifier.min_quality is None or f.quality.score >= verifier.min_quality]
        matches = (self.identify_embeddings(verifier.embedder.embed(np.stack([f.aligned for f in usable])), top_k)
                   if usable else [])
        found = dict(zip((f.number for f in usable), matches))
        return [(f, found.get(f.number)) for f in faces]

    def _verifier_for(self, verifier):
        if verifier is not None:
            return verifier
        if getattr(self, "_verifier", None) is None:
            from keras_arcface.verification import FaceVerifier

            self._verifier = FaceVerifier(self.model or None)
        return self._verifier

    def is_known(self, match, threshold=None):
        """The match clears ``threshold``, else the gallery's threshold (always, when neither is set)."""
        threshold = self.threshold if threshold is None else threshold
        return threshold is None or match.similarity >= threshold

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
        """An ``.npz`` (embeddings, identities, files, and the model and threshold as JSON), written
        atomically; no pickles."""
        from keras_arcface.files import atomic_path

        path = pathlib.Path(path)
        path = path if path.suffix == ".npz" else pathlib.Path(f"{path}.npz")
        meta = json.dumps({"model": self.model, "threshold": self.threshold,
                           "threshold_source": self.threshold_source})
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, embeddings=self.embeddings, identities=self.identities, files=self.files,
                     hashes=self.hashes, meta=np.array(meta))
        return path

    @classmethod
    def load(cls, path, backend="numpy"):
        import zipfile

        path = pathlib.Path(path)
        if not path.is_file():
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
                arrays["hashes"] = data["hashes"] if "hashes" in data.files else None  # galleries before hashes
                meta = json.loads(str(data["meta"]))
        except InputError:
            raise
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, json.JSONDecodeError):
            raise InputError(f"{path} is a damaged gallery (truncated or corrupt archive): {rebuild}") from None
        # Built outside the reading: a missing FAISS or bad contents are said as themselves, not as a bad file.
        return cls(arrays["embeddings"], arrays["identities"], arrays["files"], model=meta.get("model", ""),
                   threshold=meta.get("threshold"), threshold_source=meta.get("threshold_source", ""),
                   backend=backend, hashes=arrays["hashes"])


#: Enrolment saves the gallery after each this many photos: a killed run keeps every chunk it finished.
ENROL_CHUNK = 64
#: Threads decoding the next chunk's photos while the current one is detected and embedded.
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


def _decoded(photo):
    """``(RGB image, None)`` or ``(None, the InputError)`` of a photo (run in a reader thread)."""
    from keras_arcface.data.images import read_image

    try:
        return read_image(photo), None
    except InputError as error:
        return None, error


def enrolment_face(verifier, photo, on_note=None, image=None):
    """The face ``verifier`` enrols from ``photo`` (its :class:`~keras_arcface.verification.FoundFace`; ``image``:
    the photo already decoded, RGB): an aligned crop (the model's or ArcFace's size) as it is, as ``embed`` takes
    it, else the face detection finds and the verifier chooses.  ``on_note(photo, what was used)`` when the
    photo shows several faces or a face of low quality."""
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
    """Add the faces of ``photos`` (a folder ``<identity>/<photo>`` or a list of paths) to the gallery file
    ``path`` (made when missing, or with ``rebuild``); ``(gallery, faces added, photos already held)``.

    A photo is known by its content (sha256), so a photo already enrolled, under any name or path, is skipped:
    the same command run again adds exactly what is missing.  The gallery is saved atomically after each
    :data:`ENROL_CHUNK` photos, so a run killed half way leaves whole faces only; the file's lock is held from
    reading to the last save, so two processes enrolling at once lose nothing.  ``on_skip(path, reason)`` gets
    unusable photos, ``on_note(path, what)`` photos with several faces or a low-quality face."""
    import tqdm
    from filelock import FileLock

    from keras_arcface.zoo.download import sha256_of

    path = pathlib.Path(path)
    path = path if path.suffix == ".npz" else pathlib.Path(f"{path}.npz")
    wanted = photos_of(photos)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        index = None if rebuild or not path.is_file() else FaceIndex.load(path, backend=backend)
        if verifier is None:
            from keras_arcface.verification import FaceVerifier

            verifier = FaceVerifier(index.model if index is not None and index.model else None)
        model = str(verifier.embedder.reference)
        if index is not None and index.model and index.model != model:
            raise InputError(f"{path} holds {index.model}'s embeddings: enrol with --model {index.model}, or start a "
                             f"new gallery (--rebuild) with {model}")
        held = set() if index is None else {entry.split("#")[0] for entry in index.hashes.tolist() if entry}
        # a gallery written before content hashes: its entries are known by the file they came from
        unhashed = {} if index is None else {file: i for i, (file, entry) in
                                             enumerate(zip(index.files.tolist(), index.hashes.tolist())) if not entry}
        todo, backfilled = [], False
        for photo, identity in wanted:
            content = f"sha256:{sha256_of(photo)}"
            file = str(photo.relative_to(photos)) if isinstance(photos, (str, pathlib.Path)) else str(photo)
            if file in unhashed:
                index.record_hashes({unhashed.pop(file): f"{content}#0"})  # its face number was not recorded
                held.add(content)
                backfilled = True
            if content not in held:
                todo.append((photo, identity, content))
                held.add(content)  # the same photo twice in one run is enrolled once
        added = 0
        chunks = [todo[start:start + ENROL_CHUNK] for start in range(0, len(todo), ENROL_CHUNK)]
        progress = tqdm.tqdm(total=len(todo), unit="photo", desc="enrolling", disable=not sys.stderr.isatty())
        with concurrent.futures.ThreadPoolExecutor(READERS) as readers, progress:
            decoding = readers.map(_decoded, [photo for photo, _, _ in chunks[0]]) if chunks else None
            for number, chunk in enumerate(chunks):
                images = list(decoding)
                if number + 1 < len(chunks):  # the next chunk decodes while this one is detected and embedded
                    decoding = readers.map(_decoded, [photo for photo, _, _ in chunks[number + 1]])
                rows = []
                for (photo, identity, content), (image, error) in zip(chunk, images):
                    try:
                        if error is not None:
                            raise error
                        face = enrolment_face(verifier, photo, on_note, image)
                    except InputError as failure:
                        if on_skip is not None:
                            on_skip(str(photo), str(failure).removeprefix(f"{photo}: "))
                        continue
                    file = str(photo.relative_to(photos)) if isinstance(photos, (str, pathlib.Path)) else str(photo)
                    rows.append((face.aligned, identity, file, f"{content}#{face.number}"))
                progress.update(len(chunk))
                if not rows:
                    continue
                embeddings = verifier.embedder.embed(np.stack([row[0] for row in rows]))
                identities, files, hashes = ([row[i] for row in rows] for i in (1, 2, 3))
                if index is None:
                    index = FaceIndex(embeddings, identities, files, model=model, threshold=verifier.threshold,
                                      threshold_source=verifier.threshold_source, backend=backend, hashes=hashes)
                else:
                    index.add(embeddings, identities, files, hashes)
                index.save(path)
                added += len(rows)
        if index is None:
            raise InputError(f"no usable photo among {len(wanted)} to enrol in {path}")
        if backfilled and not added:  # (a save after a chunk holds them already)
            index.save(path)
    return index, added, len(wanted) - len(todo)
