"""What every gallery back-end shares: the :class:`Gallery` contract (identification written once, on
``nearest``), a :class:`Match`, the rules of removing and renaming, and the HNSW parameters FAISS and Milvus
both use."""

import dataclasses

import numpy as np

from keras_arcface.errors import InputError

#: HNSW graph degree and build breadth of the FAISS backend, and its default search breadth
#: (``ef_search``; recall and speed against it measured in docs/verification.md).
HNSW_NEIGHBOURS, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 512

@dataclasses.dataclass(frozen=True)
class Match:
    """One candidate identity: its best similarity over its gallery entries, and that entry's file."""

    identity: str
    similarity: float
    file: str

    def to_dict(self):
        return {"identity": self.identity, "similarity": round(self.similarity, 6), "file": self.file}


class Gallery:
    """The contract of every gallery back-end: labelled unit embeddings of one model, each entry with its
    identity, source file, content hash (``"sha256:<hex>#<face number>"``: what enrolment skips), quality and the
    time it was added.  A back-end implements :meth:`add`, :meth:`remove`, :meth:`rename`, :meth:`nearest`,
    :meth:`people`, :meth:`entries`, :meth:`held_contents`, :meth:`commit` and ``len()``; identification
    (:meth:`identify_embeddings`, :meth:`identify`, :meth:`identify_faces`) is written once, here, on
    :meth:`nearest`.  ``model``, ``threshold`` and ``threshold_source`` say what made the embeddings and where
    "known" starts."""

    model, threshold, threshold_source = "", None, ""

    def __len__(self):
        raise NotImplementedError

    def add(self, embeddings, identities, files=None, hashes=None, qualities=None, added=None):
        """Add entries: embeddings (M, d) of the gallery's model (normalised here) and, per entry, its identity,
        file, content hash, quality (NaN: unknown) and when it was added (default: now)."""
        raise NotImplementedError

    def remove(self, identity=None, file=None):
        """Remove every entry of ``identity``, or the entries of ``file``; the number removed."""
        raise NotImplementedError

    def rename(self, identity, new_name):
        """Give ``identity``'s entries the name ``new_name`` (merging them with its entries if it exists)."""
        raise NotImplementedError

    def people(self):
        """``{identity: number of faces}``, by name."""
        raise NotImplementedError

    def nearest(self, queries, k=5):
        """For each unit query embedding, its ``k`` nearest entries as :class:`Match` es, best first."""
        raise NotImplementedError

    def entries(self):
        """Every entry as a dict (identity, file, hash, quality, added, embedding), in the back-end's order."""
        raise NotImplementedError

    def held_contents(self, contents):
        """The subset of photo contents (``"sha256:<hex>"``) that some entry came from."""
        raise NotImplementedError

    def unhashed_files(self):
        """``{file: entry}`` of entries enrolled before content hashes (only old gallery files have them)."""
        return {}

    def commit(self):
        """Make the changes so far durable (a file back-end writes its file atomically)."""

    def close(self):
        """Let go of what the gallery holds open (a database connection, a lock)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def present(self):
        """The gallery is still where it was opened (another process may have deleted it since)."""
        raise NotImplementedError

    def stats(self):
        return {"faces": len(self), "identities": len(self.people()), "model": self.model,
                "threshold": self.threshold, "threshold_source": self.threshold_source}

    def identify_embeddings(self, queries, top_k=5):
        """For each query, up to ``top_k`` :class:`Match` es, one per identity, best first."""
        if int(top_k) != top_k or top_k < 1:
            raise InputError(f"top_k must be an integer >= 1, got {top_k!r}", f"--top-k must be an integer >= 1, got "
                                                                              f"{top_k!r}")
        if len(self) == 0:
            return [[] for _ in np.atleast_2d(queries)]
        wanted = min(len(self), max(10 * top_k, 50))  # enough entries to find top_k distinct identities
        results = []
        for row in self.nearest(queries, wanted):
            matches, seen = [], set()
            for match in row:
                if match.identity not in seen:
                    seen.add(match.identity)
                    matches.append(match)
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

    def identification(self, results, photo, threshold, threshold_source, model):
        """The answer of ``identify --json`` and the service's ``POST /identify`` for ``results`` (what
        :meth:`identify_faces` gave for ``photo``): every face with its identity ("unknown" below ``threshold``;
        None when it was not searched) and matches; ``identity`` / ``matches`` at the top are the main face's
        (the only one, the one asked for, or the one the verifier chose); ``identities`` every known one."""
        faces, main_face = [], None
        for face, matches in results:
            known = [self.is_known(match, threshold) for match in matches or []]
            faces.append({**face.summary(), "identity": (matches[0].identity if known[0] else "unknown") if matches
                          else None, "refused": None if matches is not None else face.quality.reasons,
                          "matches": [{**m.to_dict(), "above_threshold": k} for m, k in zip(matches or [], known)]})
            if main_face is None or face.chosen_by:
                main_face = faces[-1]
        return {"photo": photo, "faces_found": results[0][0].faces_found, "threshold": threshold,
                "threshold_source": threshold_source, "model": model,
                "identities": [f["identity"] for f in faces if f["identity"] not in (None, "unknown")],
                "identity": main_face["identity"], "matches": main_face["matches"], "faces": faces}

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


def check_removal(identity, file, removed=None, held=None):
    """The one rule of removal on every back-end: an identity or a file, that the gallery holds, and not every
    face of it (a gallery holds at least one face: delete the gallery instead)."""
    if (identity is None) == (file is None):
        raise InputError("remove takes an identity or a file")
    if removed == 0:
        what = f"identity {identity!r}" if identity is not None else f"file {file!r}"
        raise InputError(f"the gallery holds no {what}; `keras-arcface gallery list` shows what it holds")
    if removed is not None and removed == held:
        raise InputError("that would remove every face of the gallery: delete the gallery instead")


def check_rename(identity, new_name, held):
    if not held:
        raise InputError(f"the gallery holds no identity {identity!r}")
    if not str(new_name).strip():
        raise InputError("a new name must not be empty")
