"""Gallery back-ends at growing sizes on real-looking embeddings: build time, memory, query latency (one query at a
time, and batches of 256) and recall against exact search, for numpy (exact), FAISS flat / HNSW / IVF-PQ and
Milvus (Milvus Lite, through keras_arcface's own Milvus gallery).

The gallery is the default model's embeddings of LFW's 13,233 crops, grown to each size by synthetic people drawn
around them (``keras_arcface.evaluation.face_sets.synthetic_faces``: a real face moved to a new identity, and 1-20
photos of it at the spread of real same-person pairs).  The queries are real: one photo of each of ``--queries``
LFW people with two photos or more, held out of the gallery (their other photos are in it).  recall@1: how often
a back-end's best entry is exact search's best entry; recall@10: the share of exact search's top 10 it returns.

    python3 scripts/gallery_benchmark.py [--sizes 10000 100000 1000000] [--backends numpy faiss-flat faiss-hnsw
        faiss-ivfpq milvus] [--data ../shared/data] [--cache /tmp/cluster-cache] [--json docs/gallery_scale.json]
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_arcface.evaluation.face_sets import embeddings_of, synthetic_faces  # noqa: E402
from keras_arcface.gallery import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_NEIGHBOURS, FaceIndex  # noqa: E402

BACKENDS = ("numpy", "faiss-flat", "faiss-hnsw", "faiss-ivfpq", "milvus")
#: IVF-PQ: inverted lists (about 4 sqrt(N), trained on 40 points a list), bytes per vector (sub-quantizers of 8
#: bits) and lists probed.
IVF_PQ_BYTES, IVF_PQ_PROBES = 64, 64


def resident_megabytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def folder_megabytes(path):
    return sum(p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file()) / 2**20


class Searcher:
    """One back-end over ``gallery``: ``search(queries, k) -> entry numbers (Q, k)``, ``megabytes``, ``close``
    (``ivf_pq_bytes``: IVF-PQ's bytes a vector, dividing the dimension)."""

    def __init__(self, backend, gallery, workdir, ivf_pq_bytes=IVF_PQ_BYTES):
        import faiss

        self.backend, self.megabytes, self.closer = backend, None, None
        dimensions = gallery.shape[1]
        if backend == "numpy":
            index = FaceIndex(gallery, np.arange(len(gallery)).astype(str))
            self.search = lambda queries, k: index.search(queries, k)[1]
            self.megabytes = gallery.nbytes / 2**20
        elif backend == "faiss-hnsw":
            index = FaceIndex(gallery, np.arange(len(gallery)).astype(str), backend="faiss")
            self.search = lambda queries, k: index.search(queries, k)[1]
            self.megabytes = len(faiss.serialize_index(index._faiss)) / 2**20
        elif backend in ("faiss-flat", "faiss-ivfpq"):
            if backend == "faiss-flat":
                index = faiss.IndexFlatIP(dimensions)
            else:
                lists = int(4 * np.sqrt(len(gallery)))
                index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dimensions), dimensions, lists, ivf_pq_bytes, 8,
                                         faiss.METRIC_INNER_PRODUCT)
                sample = np.random.default_rng(1).choice(len(gallery), min(len(gallery), 40 * lists), replace=False)
                index.train(gallery[np.sort(sample)])
                index.nprobe = IVF_PQ_PROBES
            index.add(gallery)
            self.search = lambda queries, k: index.search(np.ascontiguousarray(queries), k)[1]
            self.megabytes = len(faiss.serialize_index(index)) / 2**20
        else:
            from keras_arcface.gallery.milvus import MilvusGallery

            location = str(pathlib.Path(workdir) / "gallery.db")
            store = MilvusGallery.create(location, dimensions, model="benchmark")
            for start in range(0, len(gallery), 16384):
                part = np.arange(start, min(start + 16384, len(gallery)))
                store.add(gallery[part], part.astype(str), hashes=[f"sha256:{i}#1" for i in part])
            store.commit()
            self.search = lambda queries, k: np.array([[int(m.identity) for m in row]
                                                       for row in store.nearest(queries, k)])
            self.closer = store.close
            self.megabytes = folder_megabytes(location)

    def close(self):
        if self.closer is not None:
            self.closer()


def per_query_ms(searcher, queries, batch):
    start = time.perf_counter()
    for begin in range(0, len(queries), batch):
        searcher.search(queries[begin:begin + batch], 10)
    return 1000 * (time.perf_counter() - start) / len(queries)


def held_out_queries(real, identities, count, seed=0):
    """``(gallery rows of ``real``, query rows)``: one photo of each of ``count`` people with two or more."""
    rng = np.random.default_rng(seed)
    names, counts = np.unique(identities, return_counts=True)
    chosen = rng.choice(names[counts >= 2], count, replace=False)
    queries = np.array([rng.choice(np.flatnonzero(identities == name)) for name in chosen])
    return np.setdiff1d(np.arange(len(real)), queries), queries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--cache", default=None, help="folder for LFW's embeddings (reused when present)")
    parser.add_argument("--model", default=None, help="zoo model (default: the zoo's default)")
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args()
    from keras_arcface.zoo import default_model

    model = args.model or default_model()
    real, identities, reference = embeddings_of(model, pathlib.Path(args.data) / "lfw" / "aligned", args.cache)
    kept, held_out = held_out_queries(real, identities, args.queries)
    queries = real[held_out]
    rows = []
    for size in args.sizes:
        gallery = synthetic_faces(real[kept], size) if size > len(kept) else real[kept][:size]
        exact_top = None
        row = {"entries": size, "dimensions": int(gallery.shape[1]), "model": str(reference), "backends": {}}
        for backend in args.backends:
            workdir = tempfile.mkdtemp(prefix="gallery-benchmark-")
            before, start = resident_megabytes(), time.perf_counter()
            searcher = Searcher(backend, gallery, workdir)
            measured = {"build_s": round(time.perf_counter() - start, 2),
                        "index_megabytes": round(searcher.megabytes, 1),
                        "resident_growth_megabytes": round(resident_megabytes() - before, 1)}
            measured["ms_per_query_single"] = round(per_query_ms(searcher, queries[:32], 1), 3)
            measured["ms_per_query_batch256"] = round(per_query_ms(searcher, queries, 256), 4)
            top = searcher.search(queries, 10)
            if exact_top is None:  # (numpy first: the exact answer)
                exact_top = top if backend == "numpy" else Searcher("numpy", gallery, workdir).search(queries, 10)
            measured["recall_at_1"] = round(float(np.mean(top[:, 0] == exact_top[:, 0])), 4)
            measured["recall_at_10"] = round(float(np.mean([len(set(a) & set(e)) / 10
                                                            for a, e in zip(top, exact_top)])), 4)
            searcher.close()
            del searcher
            shutil.rmtree(workdir, ignore_errors=True)
            row["backends"][backend] = measured
            print(json.dumps({"entries": size, "backend": backend, **measured}), flush=True)
        rows.append(row)
    if args.json:
        settings = {"hnsw": {"M": HNSW_NEIGHBOURS, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH},
                    "ivf_pq": {"lists": "4 sqrt(N), trained on 40 a list", "bytes_per_vector": IVF_PQ_BYTES,
                               "probes": IVF_PQ_PROBES},
                    "queries": f"{args.queries} held-out LFW photos (people with 2+ photos)",
                    "command": "python3 scripts/gallery_benchmark.py " + " ".join(sys.argv[1:])}
        pathlib.Path(args.json).write_text(json.dumps({"settings": settings, "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
