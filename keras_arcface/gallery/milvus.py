"""Galleries in Milvus: the scale-out back-end of :class:`~keras_arcface.gallery.Gallery` (``pip install
keras-arcface[milvus]``: pymilvus, and Milvus Lite for local files).

    open_gallery("milvus://milvus.example.org:19530/faces")   # a Milvus server or cluster (token: $MILVUS_TOKEN)
    open_gallery("faces.db")                                   # Milvus Lite: a local folder, one process at a time

One collection per gallery, laid out here and nowhere else:

- ``key`` (VARCHAR, primary): the face's content hash ``sha256:<photo hex>#<face number>`` (or ``entry:<uuid>``
  for a face without one), so writing a face twice is one face (an insert is an upsert);
- ``embedding`` (FLOAT_VECTOR, d): unit length, searched with metric ``IP`` (inner product: cosine on unit
  vectors) through an ``HNSW`` index (M 32, efConstruction 80, search width ``ef`` = max(512, k): the FAISS
  back-end's parameters, :data:`~keras_arcface.HNSW_NEIGHBOURS` and the rest);
- ``identity``, ``file``, ``content`` (the photo's hash without the face number: what enrolment skips),
  ``quality`` (FLOAT, NaN unknown), ``added`` (DOUBLE, seconds since 1970);
- the collection property ``keras_arcface.gallery``: JSON of the model, its threshold and where it came from.

Writes are sent with Strong consistency reads after them: what one client added, the next search sees.
"""

import json
import os
import pathlib
import time
import urllib.parse
import uuid

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.gallery.base import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_NEIGHBOURS,
    Gallery,
    Match,
    check_removal,
    check_rename,
)

#: The collection when a location names none (``milvus://host:port`` or a ``.db`` file).
DEFAULT_COLLECTION = "faces"
#: The collection property holding the gallery's model and threshold (JSON).
META_PROPERTY = "keras_arcface.gallery"
#: Longest identity, file and key Milvus stores (VARCHAR max_length).
IDENTITY_LENGTH, FILE_LENGTH, KEY_LENGTH = 1024, 4096, 160
#: Rows read per page when listing or exporting (Milvus returns at most 16,384 per query).
PAGE = 4096


def parse_location(location):
    """``(uri, collection, lock path or None)`` of ``milvus://host:port[/collection]`` (a server:
    ``http://host:port``) or of a Milvus Lite ``.db`` folder (whose one process at a time we keep by a lock
    beside it)."""
    location = str(location)
    if location.startswith("milvus://"):
        parts = urllib.parse.urlsplit(location)
        if not parts.hostname:
            raise InputError(f"{location}: a Milvus gallery is milvus://HOST:PORT/COLLECTION")
        collection = parts.path.strip("/") or DEFAULT_COLLECTION
        return f"http://{parts.hostname}:{parts.port or 19530}", _checked_name(collection, location), None
    if location.endswith(".db"):
        path = pathlib.Path(location).resolve()
        return str(path), DEFAULT_COLLECTION, f"{path}.lock"
    raise InputError(f"{location} is not a Milvus gallery (milvus://HOST:PORT/COLLECTION or a Milvus Lite .db)")


def _checked_name(collection, location):
    if not collection.replace("_", "a").isalnum() or collection[0].isdigit():
        raise InputError(f"{location}: a Milvus collection name is letters, digits and _ (not first a digit), got "
                         f"{collection!r}")
    return collection


def _quoted(value):
    """A string literal of Milvus' filter expressions."""
    return json.dumps(str(value))


class _Connection:
    """A client of ``location`` (and, for a Milvus Lite file, its lock held until :meth:`close`)."""

    def __init__(self, location):
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise InputError("a Milvus gallery needs pymilvus (and milvus-lite for .db files): "
                             "pip install keras-arcface[milvus]") from None
        self.uri, self.collection, lock_path = parse_location(location)
        self.lock = None
        if lock_path is not None:
            from filelock import FileLock

            self.lock = FileLock(lock_path)
            self.lock.acquire()
        try:
            self.client = MilvusClient(uri=self.uri, token=os.environ.get("MILVUS_TOKEN", ""))
        except Exception as error:  # pymilvus raises its own exception types for an unreachable server
            self.close()
            raise InputError(f"cannot reach the Milvus gallery {location}: {error}") from None

    def close(self):
        client, self.client = getattr(self, "client", None), None
        if client is not None:
            client.close()
        if self.lock is not None and self.lock.is_locked:
            # Milvus Lite keeps its in-process server (and the folder) until the process ends: hand it back first
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.uri)
            self.lock.release()


class MilvusGallery(Gallery):
    """A gallery held by Milvus (see the module's docstring for its collection); the same contract as
    :class:`~keras_arcface.gallery.FaceIndex`.  Open one with :meth:`open` or :meth:`create`; close it when done."""

    def __init__(self, connection, ef_search=HNSW_EF_SEARCH):
        self.connection, self.client, self.collection = connection, connection.client, connection.collection
        self.client.load_collection(self.collection)  # (a collection is searched once loaded; loading twice is a no-op)
        description = self.client.describe_collection(self.collection)
        meta = json.loads(description.get("properties", {}).get(META_PROPERTY, "{}"))
        self.model, self.threshold = meta.get("model", ""), meta.get("threshold")
        self.threshold_source = meta.get("threshold_source", "")
        self.dimensions = next(field["params"]["dim"] for field in description["fields"]
                               if field["name"] == "embedding")
        self.location, self.ef_search = str(connection.uri), int(ef_search)

    @classmethod
    def open(cls, location, ef_search=HNSW_EF_SEARCH, missing_ok=False):
        """The gallery at ``location``; when there is none, an error (None with ``missing_ok``)."""
        uri, _, lock_path = parse_location(location)
        if missing_ok and lock_path is not None and not pathlib.Path(uri).exists():
            return None  # (a Milvus Lite client would make the folder)
        connection = _Connection(location)
        if not connection.client.has_collection(connection.collection):
            connection.close()
            if missing_ok:
                return None
            raise InputError(f"no gallery at {location}: build one with `keras-arcface index FOLDER -o {location}`")
        return cls(connection, ef_search)

    @classmethod
    def create(cls, location, dimensions, model="", threshold=None, threshold_source=""):
        """The gallery at ``location`` for ``dimensions``-d embeddings of ``model``: made empty when missing; when
        it exists (another writer made it first), opened, provided it holds the same model's embeddings
        (:meth:`delete` it first to start afresh)."""
        from pymilvus import DataType, MilvusClient

        connection = _Connection(location)
        client, collection = connection.client, connection.collection
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=KEY_LENGTH)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(dimensions))
        schema.add_field("identity", DataType.VARCHAR, max_length=IDENTITY_LENGTH)
        schema.add_field("file", DataType.VARCHAR, max_length=FILE_LENGTH)
        schema.add_field("content", DataType.VARCHAR, max_length=KEY_LENGTH)
        schema.add_field("quality", DataType.FLOAT)
        schema.add_field("added", DataType.DOUBLE)
        index = client.prepare_index_params()
        index.add_index(field_name="embedding", index_type="HNSW", metric_type="IP",
                        params={"M": HNSW_NEIGHBOURS, "efConstruction": HNSW_EF_CONSTRUCTION})
        meta = json.dumps({"model": model, "threshold": threshold, "threshold_source": threshold_source})
        try:
            if not client.has_collection(collection):
                try:
                    client.create_collection(collection, schema=schema, index_params=index,
                                             properties={META_PROPERTY: meta}, consistency_level="Strong")
                except Exception:
                    if not client.has_collection(collection):  # (not a writer that raced us to it: a real error)
                        raise
            gallery = cls(connection)
        except BaseException:
            connection.close()
            raise
        if (gallery.model, gallery.dimensions) != (model, int(dimensions)):
            gallery.close()
            raise InputError(f"{location} holds {gallery.dimensions}-d embeddings of {gallery.model}, not "
                             f"{int(dimensions)}-d ones of {model}: enrol with --model {gallery.model}, or start "
                             "afresh (--rebuild)")
        return gallery

    def close(self):
        self.connection.close()

    def delete(self):
        """Drop this gallery's collection (every entry) and close it."""
        try:
            self.client.drop_collection(self.collection)
        finally:
            self.close()

    def present(self):
        """The collection is still there (another process may have dropped it since it was opened)."""
        return bool(self.client.has_collection(self.collection))

    def __len__(self):
        return self._count("")

    def add(self, embeddings, identities, files=None, hashes=None, qualities=None, added=None):
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        count = len(embeddings)
        if embeddings.shape[1] != self.dimensions or len(identities) != count:
            raise InputError(f"{len(identities)} identities for embeddings of shape {embeddings.shape}; the gallery "
                             f"holds {self.dimensions}-d embeddings of {self.model or 'its model'}")
        embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        files = [""] * count if files is None else [str(file) for file in files]
        hashes = [""] * count if hashes is None else [str(entry) for entry in hashes]
        qualities = [np.nan] * count if qualities is None else qualities
        added = [time.time()] * count if added is None else added
        for name in identities:
            if not str(name).strip() or len(str(name)) > IDENTITY_LENGTH:
                raise InputError(f"an identity is 1 to {IDENTITY_LENGTH} characters, got {str(name)[:80]!r}")
        rows = [{"key": entry or f"entry:{uuid.uuid4().hex}", "embedding": vector.tolist(), "identity": str(name),
                 "file": file[:FILE_LENGTH], "content": entry.split("#")[0], "quality": float(quality),
                 "added": float(when)}
                for vector, name, file, entry, quality, when in zip(embeddings, identities, files, hashes, qualities,
                                                                     added)]
        for start in range(0, len(rows), PAGE):
            self.client.upsert(self.collection, rows[start:start + PAGE])

    def _rows(self, filter="", fields=("identity", "file", "key", "quality", "added")):
        iterator = self.client.query_iterator(self.collection, batch_size=PAGE, filter=filter,
                                              output_fields=list(fields))
        try:
            while True:
                page = iterator.next()
                if not page:
                    return
                yield from page
        finally:
            iterator.close()

    def _count(self, filter):
        return int(self.client.query(self.collection, filter=filter, output_fields=["count(*)"])[0]["count(*)"])

    def remove(self, identity=None, file=None):
        check_removal(identity, file)
        condition = f"identity == {_quoted(identity)}" if identity is not None else f"file == {_quoted(file)}"
        removed = self._count(condition)
        check_removal(identity, file, removed, len(self))
        self.client.delete(self.collection, filter=condition)
        return removed

    def rename(self, identity, new_name):
        condition = f"identity == {_quoted(identity)}"
        check_rename(identity, new_name, self._count(condition) > 0)
        rows = list(self._rows(condition, ("key", "embedding", "identity", "file", "content", "quality", "added")))
        for row in rows:
            row["identity"] = str(new_name).strip()
        for start in range(0, len(rows), PAGE):
            self.client.upsert(self.collection, rows[start:start + PAGE])

    def people(self):
        counts = {}
        for row in self._rows(fields=("identity",)):
            counts[row["identity"]] = counts.get(row["identity"], 0) + 1
        return dict(sorted(counts.items()))

    def stats(self):
        return {**super().stats(), "dimensions": self.dimensions, "backend": "milvus",
                "uri": self.location, "collection": self.collection,
                "index": {"type": "HNSW", "metric": "IP", "M": HNSW_NEIGHBOURS,
                          "efConstruction": HNSW_EF_CONSTRUCTION, "ef": self.ef_search}}

    def entries(self):
        for row in self._rows(fields=("identity", "file", "key", "quality", "added", "embedding")):
            yield {"identity": row["identity"], "file": row["file"],
                   "hash": "" if row["key"].startswith("entry:") else row["key"], "quality": float(row["quality"]),
                   "added": float(row["added"]), "embedding": np.asarray(row["embedding"], np.float32)}

    def held_contents(self, contents):
        contents, held = sorted(set(contents)), set()
        for start in range(0, len(contents), 1000):
            part = contents[start:start + 1000]
            condition = f"content in [{', '.join(_quoted(content) for content in part)}]"
            held.update(row["content"] for row in self._rows(condition, ("content",)))
        return held

    def nearest(self, queries, k=5):
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        if queries.shape[1] != self.dimensions:
            raise InputError(f"queries have {queries.shape[1]} dimensions, the gallery {self.dimensions}: "
                             f"embed them with the gallery's model ({self.model or 'unknown'})")
        hits = self.client.search(self.collection, data=queries.tolist(), limit=int(k), anns_field="embedding",
                                  output_fields=["identity", "file"],
                                  search_params={"metric_type": "IP", "params": {"ef": max(self.ef_search, int(k))}})
        return [[Match(hit["entity"]["identity"], float(hit["distance"]), hit["entity"]["file"]) for hit in row]
                for row in hits]

    def commit(self):
        self.client.flush(self.collection)
