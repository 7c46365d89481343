"""Who is in my photos?  Unlabelled faces grouped by person, named once, then a gallery.

    from keras_arcface import cluster_faces
    clusters = cluster_faces(["photos/a.jpg", "photos/b.jpg", ...])   # every face of every photo
    clusters.save("clusters.json")                                     # + clusters.npz (the embeddings)
    clusters.add_photos(["photos/new.jpg"])                            # joins the clusters it matches
    clusters.name(3, "Alice"); copy_gallery(clusters.to_gallery(), "people.npz")   # or a Milvus location

The method (``method="average"``, the default): average linkage (UPGMA): two groups of faces merge, best
first, while the mean cosine over every pair of their faces is at least the threshold, computed exactly from
each group's sum vector; a k-nearest-neighbour graph (exact, block by block) only says which groups are
candidates, so nothing N x N is built.  The threshold is the model card's for a false-accept rate (``far``),
so it means the same for every model.  ``method="single"`` (connected components of the graph's edges above
the threshold: one false match chains two people together) is kept for comparison; docs/clustering.md
measures both, and scikit-learn's graph-restricted average linkage, on all of LFW.
"""

import dataclasses
import json
import pathlib

import numpy as np

from keras_arcface.errors import InputError

METHODS = ("average", "single")
#: Each face's nearest neighbours in the graph (the only pairs ever compared).
NEIGHBOURS = 30
DEFAULT_FAR = 1e-3


def neighbour_graph(embeddings, neighbours=NEIGHBOURS, block=1024):
    """``(indices, similarities)``, each (N, k): every unit embedding's k most similar others, exact, a block
    of rows at a time (memory N x k, not N x N)."""
    embeddings = np.ascontiguousarray(embeddings, np.float32)
    count = len(embeddings)
    k = min(int(neighbours), count - 1)
    indices = np.empty((count, k), np.int64)
    similarities = np.empty((count, k), np.float32)
    for start in range(0, count, block):
        scores = embeddings[start:start + block] @ embeddings.T
        rows = np.arange(len(scores))
        scores[rows, start + rows] = -np.inf  # not its own neighbour
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        indices[start:start + block] = top
        similarities[start:start + block] = np.take_along_axis(scores, top, axis=1)
    return indices, similarities


def cluster_embeddings(embeddings, threshold, method="average", neighbours=NEIGHBOURS):
    """A cluster number per unit embedding (0, 1, ...; a face alone is a cluster of one) for a cosine
    ``threshold``: :func:`average_linkage` (``method="average"``) or connected components of the
    neighbour graph's edges at or above it (``"single"``)."""
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    embeddings = np.asarray(embeddings, np.float32)
    count = len(embeddings)
    if count < 2:
        return np.zeros(count, np.int64)
    indices, similarities = neighbour_graph(embeddings, neighbours)
    if method == "average":
        return average_linkage(embeddings, threshold, indices, similarities)
    parent = np.arange(count)

    def root(face):
        while parent[face] != face:
            parent[face] = parent[parent[face]]
            face = parent[face]
        return face

    for face, other in zip(*np.nonzero(similarities >= threshold)):
        parent[root(face)] = root(int(indices[face, other]))
    return _numbered(parent)


def average_linkage(embeddings, threshold, indices, similarities):
    """Average-linkage (UPGMA) clustering of unit embeddings, stopped at mean cosine ``threshold``, without an
    N x N matrix: the mean cosine over every pair of faces of two groups is exactly the dot product of their
    sums over the product of their sizes, so each group carries its sum; only groups joined by an edge of the
    neighbour graph (``indices`` / ``similarities`` of :func:`neighbour_graph`) are candidates to merge.  The
    best pair merges first (a heap; stale entries skipped by version).  Cluster numbers per face.

    (scikit-learn's ``AgglomerativeClustering(linkage="average", connectivity=graph)`` averages over the
    graph's edges only, the nearest pairs, which chains people together: pairwise F 0.11 against this
    method's 0.97 on all of LFW at the same threshold; docs/clustering.md.)"""
    import heapq

    count = len(embeddings)
    sums = np.asarray(embeddings, np.float64).copy()
    sizes = np.ones(count)
    parent = np.arange(count)
    version = np.zeros(count, np.int64)
    adjacent = [set() for _ in range(count)]
    for face, row in enumerate(indices.tolist()):
        for other in row:
            adjacent[face].add(other)
            adjacent[other].add(face)
    heap = [(-float(similarity), min(face, int(other)), max(face, int(other)), 0, 0)
            for face in range(count) for other, similarity in zip(indices[face], similarities[face])
            if similarity >= threshold]
    heapq.heapify(heap)
    while heap:
        _, a, b, version_a, version_b = heapq.heappop(heap)
        if parent[a] != a or parent[b] != b or version[a] != version_a or version[b] != version_b:
            continue  # one side has merged since this entry was pushed
        keep, gone = (a, b) if len(adjacent[a]) >= len(adjacent[b]) else (b, a)
        parent[gone] = keep
        sums[keep] += sums[gone]
        sizes[keep] += sizes[gone]
        version[keep] += 1
        for other in adjacent[gone]:
            if other != keep:
                adjacent[other].discard(gone)
                adjacent[other].add(keep)
                adjacent[keep].add(other)
        adjacent[keep].discard(gone)
        adjacent[gone] = set()
        others = np.fromiter(adjacent[keep], np.int64, len(adjacent[keep]))
        if len(others):
            mean_cosine = sums[others] @ sums[keep] / (sizes[others] * sizes[keep])
            for other, similarity in zip(others.tolist(), mean_cosine.tolist()):
                if similarity >= threshold:
                    first, second = min(keep, other), max(keep, other)
                    heapq.heappush(heap, (-similarity, first, second, int(version[first]), int(version[second])))
    return _numbered(parent)


def _numbered(parent):
    """Cluster numbers 0, 1, ... from union-find parents (each root its own parent)."""
    roots = parent
    while not np.array_equal(roots[roots], roots):
        roots = roots[roots]
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


@dataclasses.dataclass
class FaceClusters:
    """Faces grouped by person.  ``embeddings`` (N, d) unit vectors, ``faces`` (N dicts: photo, face, box,
    quality), ``labels`` (N: a cluster id, or -1 for a face in no cluster of ``min_size`` or more), ``names``
    ({cluster id: name}), and how they were made (``model``, ``threshold``, ``threshold_source``, ``method``,
    ``min_size``)."""

    embeddings: np.ndarray
    faces: list
    labels: np.ndarray
    model: str
    threshold: float
    threshold_source: str
    method: str = "average"
    min_size: int = 2
    names: dict = dataclasses.field(default_factory=dict)

    @property
    def cluster_ids(self):
        return sorted(int(label) for label in set(self.labels.tolist()) if label >= 0)

    def members(self, cluster):
        return np.flatnonzero(self.labels == cluster)

    def summary(self, cluster):
        """One cluster: its faces, representative (the face nearest its mean), cohesion (mean cosine between
        its faces) and name."""
        members = self.members(cluster)
        vectors = self.embeddings[members]
        total = vectors.sum(axis=0)
        count = len(members)
        cohesion = float((total @ total - count) / (count * (count - 1))) if count > 1 else 1.0
        representative = int(members[np.argmax(vectors @ total)])
        return {"cluster": cluster, "name": self.names.get(cluster), "size": count, "cohesion": round(cohesion, 4),
                "representative": self.faces[representative],
                "faces": [self.faces[i] for i in members]}

    def to_dict(self):
        unclustered = np.flatnonzero(self.labels < 0)
        clusters = sorted((self.summary(c) for c in self.cluster_ids), key=lambda c: (-c["size"], c["cluster"]))
        return {"model": self.model, "threshold": self.threshold, "threshold_source": self.threshold_source,
                "method": self.method, "min_size": self.min_size, "faces": len(self.faces),
                "clusters": clusters, "unclustered": [self.faces[i] for i in unclustered]}

    def name(self, cluster, name):
        """Name cluster ``cluster`` (its faces become that person's in :meth:`to_gallery`)."""
        if int(cluster) not in self.cluster_ids:
            raise InputError(f"no cluster {cluster!r}: the clusters are {self.cluster_ids[:20]}"
                             f"{' ...' if len(self.cluster_ids) > 20 else ''}")
        if not str(name).strip() or "/" in str(name):
            raise InputError(f"a cluster's name must be a non-empty name without '/', got {name!r}")
        self.names[int(cluster)] = str(name).strip()

    def add(self, embeddings, faces):
        """New faces join the clusters they match (mean cosine to the cluster's faces at or above the threshold:
        average linkage's own rule); the rest are clustered with the faces no cluster holds yet, and groups of
        ``min_size`` or more become new clusters.  Faces already held (the same photo and face) are skipped.
        Existing clusters keep their ids and names."""
        held = {(face["photo"], face.get("face")) for face in self.faces}
        fresh = [i for i, face in enumerate(faces) if (face["photo"], face.get("face")) not in held]
        if not fresh:
            return 0
        embeddings = np.asarray(embeddings, np.float32)[fresh]
        faces = [faces[i] for i in fresh]
        labels = np.full(len(faces), -1, np.int64)
        ids = self.cluster_ids
        if ids:
            sums = np.stack([self.embeddings[self.members(c)].sum(axis=0) for c in ids])
            sizes = np.array([len(self.members(c)) for c in ids])
            mean_cosine = embeddings @ sums.T / sizes
            best = np.argmax(mean_cosine, axis=1)
            joins = mean_cosine[np.arange(len(faces)), best] >= self.threshold
            labels[joins] = np.asarray(ids)[best[joins]]
        self.embeddings = np.concatenate([self.embeddings, embeddings])
        self.faces = self.faces + faces
        self.labels = np.concatenate([self.labels, labels])
        loose = np.flatnonzero(self.labels < 0)
        if len(loose) >= self.min_size:
            grouped = cluster_embeddings(self.embeddings[loose], self.threshold, self.method)
            next_id = max(ids, default=-1) + 1
            for group in np.unique(grouped):
                members = loose[grouped == group]
                if len(members) >= self.min_size:
                    self.labels[members] = next_id
                    next_id += 1
        return len(faces)

    def to_gallery(self):
        """A :class:`~keras_arcface.gallery.FaceIndex` of the named clusters (``index`` / ``identify``
        compatible): naming a cluster once enrols all its faces."""
        from keras_arcface.gallery import FaceIndex

        if not self.names:
            raise InputError("no cluster is named yet: name one (keras-arcface cluster --name ID=NAME) first")
        rows = [i for i, label in enumerate(self.labels) if int(label) in self.names]
        return FaceIndex(self.embeddings[rows], [self.names[int(self.labels[i])] for i in rows],
                         [self.faces[i]["photo"] for i in rows], model=self.model, threshold=self.threshold,
                         threshold_source=f"the clusters' threshold ({self.threshold_source})")

    def save(self, path):
        """``path`` (.json, the clusters as people read them) and ``path`` with .npz (embeddings and labels, for
        :meth:`add` later), each written atomically (the .npz first: the .json names what it holds).  A second
        writer is kept out by :func:`update_clusters`, which holds the file's lock from reading to saving."""
        from keras_arcface.files import atomic_path, write_text_atomically

        path = pathlib.Path(path)
        with atomic_path(path.with_suffix(".npz")) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, embeddings=self.embeddings, labels=self.labels,
                     faces=np.array(json.dumps(self.faces)), names=np.array(json.dumps(self.names)))
        write_text_atomically(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path):
        path = pathlib.Path(path)
        arrays = path.with_suffix(".npz")
        if not path.is_file() or not arrays.is_file():
            raise InputError(f"{path} and {arrays.name} beside it are what `keras-arcface cluster -o {path}` writes; "
                             "one is missing")
        try:
            meta = json.loads(path.read_text())
            with np.load(arrays, allow_pickle=False) as data:
                embeddings, labels = data["embeddings"], data["labels"]
                faces, names = json.loads(str(data["faces"])), json.loads(str(data["names"]))
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"{path}: not clusters written by `keras-arcface cluster` ({error})") from None
        return cls(embeddings, faces, labels, meta["model"], meta["threshold"], meta["threshold_source"],
                   meta["method"], meta["min_size"], {int(k): v for k, v in names.items()})

    def copy_to(self, folder):
        """A folder per cluster (``<id>`` or its name) and ``unclustered/``, each holding links to the photos
        (copies where links are not possible)."""
        import os
        import shutil

        folder = pathlib.Path(folder)
        for index, face in enumerate(self.faces):
            label = int(self.labels[index])
            group = "unclustered" if label < 0 else self.names.get(label, f"{label:04d}")
            source = pathlib.Path(face["photo"]).resolve()
            target = folder / group / f"{source.stem}_face{face.get('face', 1)}{source.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() or target.is_symlink():
                target.unlink()
            try:
                os.symlink(source, target)
            except OSError:
                shutil.copyfile(source, target)
        return folder


def update_clusters(path, photos=(), verifier=None, names=None, on_skip=None, **options):
    """Cluster ``photos`` into the clusters file ``path`` (created by :func:`cluster_faces` with ``options``
    when it does not exist; else the new faces join it, faces it holds skipped), name clusters (``names``:
    {id: name}), save: all under ``path``'s lock, so two processes adding at once lose nothing, and a run
    killed half way leaves the file as it was (a rerun adds what is missing)."""
    from filelock import FileLock

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if path.is_file():
            clusters = FaceClusters.load(path)
            if photos:
                if verifier is None:
                    from keras_arcface.verification import FaceVerifier

                    verifier = FaceVerifier(clusters.model or None)
                if str(verifier.embedder.reference) != clusters.model:
                    raise InputError(f"{path} holds {clusters.model}'s embeddings; add photos with that model "
                                     f"(--model {clusters.model}), not {verifier.embedder.reference}")
                clusters.add(*embed_photo_faces([str(p) for p in photos], verifier, on_skip))
        elif photos:
            clusters = cluster_faces([str(p) for p in photos], verifier, on_skip=on_skip, **options)
        else:
            raise InputError(f"{path} does not exist yet: give photos to cluster")
        for cluster, name in (names or {}).items():
            clusters.name(cluster, name)
        clusters.save(path)
    return clusters


def embed_photo_faces(photos, verifier, on_skip=None):
    """``(embeddings, faces)`` of every face of every photo (``faces``: photo, face number, box, quality),
    faces below the verifier's ``min_quality`` left out; unreadable photos and photos without a face go to
    ``on_skip(path, reason)``."""
    crops, faces = [], []
    for photo in photos:
        try:
            found = verifier.find_faces(photo)
        except InputError as error:
            if on_skip is not None:
                on_skip(str(photo), str(error).removeprefix(f"{photo}: "))
            continue
        for face in found:
            if verifier.min_quality is not None and face.quality.score < verifier.min_quality:
                if on_skip is not None:
                    on_skip(str(photo), f"face {face.number}: quality {face.quality.score:.2f} below the minimum")
                continue
            crops.append(face.aligned)
            faces.append({"photo": str(photo), "face": face.number,
                          "box": None if face.box is None else [round(v, 1) for v in face.box],
                          "quality": round(face.quality.score, 4)})
    if not crops:
        return np.zeros((0, 0), np.float32), []
    embeddings = np.concatenate([verifier.embedder.embed(np.stack(crops[i:i + 64])) for i in range(0, len(crops), 64)])
    return embeddings, faces


def cluster_faces(source, verifier=None, far=DEFAULT_FAR, threshold=None, min_size=2, method="average",
                  model=None, on_skip=None):
    """Group faces by person.  ``source``: photos (paths; every face of each, with ``verifier``'s detection,
    face choice and ``min_quality``) or unit embeddings (N, d) of ``model``'s.  The threshold: ``threshold``,
    else the one the model's card measured for ``far``."""
    if min_size < 1:
        raise InputError(f"min_size must be >= 1, got {min_size!r}")
    if isinstance(source, np.ndarray):
        embeddings = np.asarray(source, np.float32)
        faces = [{"photo": f"#{i}", "face": 1, "box": None, "quality": None} for i in range(len(embeddings))]
        reference = None
        if threshold is None:
            from keras_arcface.embedding import load_embedder

            reference = load_embedder(model).reference
    else:
        if verifier is None:
            from keras_arcface.verification import FaceVerifier

            verifier = FaceVerifier(model)
        embeddings, faces = embed_photo_faces([str(p) for p in source], verifier, on_skip)
        reference = verifier.embedder.reference
    if threshold is not None:
        threshold, source_text = float(threshold), "given"
    else:
        threshold, source_text = reference.threshold_at_far(far)
    if not faces:
        raise InputError("no face to cluster: the photos given show no usable face")
    embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    grouped = cluster_embeddings(embeddings, threshold, method)
    labels = np.full(len(faces), -1, np.int64)
    next_id = 0
    sizes = np.bincount(grouped)
    for group in np.argsort(-sizes, kind="stable"):  # ids by size: cluster 0 is the largest
        if sizes[group] >= min_size:
            labels[grouped == group] = next_id
            next_id += 1
    name = str(reference) if reference is not None else str(model or "")
    return FaceClusters(embeddings, faces, labels, name, threshold, source_text, method, int(min_size))
