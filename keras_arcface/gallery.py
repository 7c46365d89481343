"""1:N identification: a gallery of labelled face embeddings and the search over it.

    index = FaceIndex.build("gallery/")              # one folder per person, raw photos
    index.save("gallery.npz")
    FaceIndex.load("gallery.npz").identify("photo.jpg", top_k=5)

Search is exact cosine similarity with numpy by default (one matrix product; every entry scored).
``backend="faiss"`` keeps the same API on a FAISS HNSW graph (``pip install keras-arcface[faiss]``):
approximate, for galleries where scoring every entry per query costs too much; its recall against
the exact search is measured by ``scripts/gallery_benchmark.py`` (see docs/verification.md).
"""

import dataclasses
import json
import pathlib

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
                 backend="numpy", ef_search=HNSW_EF_SEARCH):
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
        from keras_arcface.data.images import IMAGE_EXTENSIONS

        if not isinstance(folder, (str, pathlib.Path)):
            photos = sorted(pathlib.Path(path) for path in folder)
            if not photos:
                raise InputError("no photos given to build a gallery from")
            return cls._built(photos, verifier, backend, on_skip, root=None)
        folder = pathlib.Path(folder)
        if not folder.is_dir():
            raise InputError(f"gallery folder {folder} not found: pass a folder with one sub-folder of photos "
                             "per person")
        photos = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not photos:
            raise InputError(f"no photos ({', '.join(IMAGE_EXTENSIONS)}) in the sub-folders of {folder}: lay it out "
                             "as <folder>/<person>/<photo>")
        return cls._built(photos, verifier, backend, on_skip, root=folder)

    @classmethod
    def _built(cls, photos, verifier, backend, on_skip, root):
        """The gallery of ``photos`` (each in its person's folder); ``files`` relative to ``root`` when given."""
        if verifier is None:
            from keras_arcface.verification import FaceVerifier

            verifier = FaceVerifier()
        from keras_arcface.alignment.quality import GOOD_QUALITY
        from keras_arcface.verification import collect_faces

        notes = []

        def face_of(path):
            face = verifier.find_face(path)
            if face.faces_found > 1 or face.quality.score < GOOD_QUALITY:
                notes.append((str(path), face.describe().removeprefix(f"{path}: ")))
            return face.aligned

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
                     meta=np.array(meta))
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
                meta = json.loads(str(data["meta"]))
        except InputError:
            raise
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, json.JSONDecodeError):
            raise InputError(f"{path} is a damaged gallery (truncated or corrupt archive): {rebuild}") from None
        # Built outside the reading: a missing FAISS or bad contents are said as themselves, not as a bad file.
        return cls(arrays["embeddings"], arrays["identities"], arrays["files"], model=meta.get("model", ""),
                   threshold=meta.get("threshold"), threshold_source=meta.get("threshold_source", ""),
                   backend=backend)
