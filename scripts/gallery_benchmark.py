"""Build and query time of FaceIndex, exact (numpy) against FAISS HNSW, at growing gallery sizes.

Synthetic unit vectors (uniform on the sphere, the hardest case for a graph index: real face
embeddings cluster by identity) stand in for embeddings; recall@10 of HNSW is measured against the
exact search.  Query time is per query, for one query at a time (a person at a door) and for a
batch of 256 (deduplicating a photo library).

    python3 scripts/gallery_benchmark.py [--sizes 10000 100000 1000000] [--dim 128] [--json out.json]
"""

import argparse
import json
import pathlib
import time

import numpy as np

from keras_arcface.gallery import FaceIndex


def unit_vectors(rng, n, dim, chunk=100_000):
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        out[start:start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def per_query_seconds(index, queries, batch):
    start = time.perf_counter()
    for begin in range(0, len(queries), batch):
        index.search(queries[begin:begin + batch], k=10)
    return (time.perf_counter() - start) / len(queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        gallery = unit_vectors(rng, size, args.dim)
        queries = unit_vectors(rng, args.queries, args.dim)
        identities = np.arange(size).astype(str)
        row = {"entries": size, "dim": args.dim, "megabytes": round(gallery.nbytes / 2**20, 1)}
        for backend in ("numpy", "faiss"):
            start = time.perf_counter()
            index = FaceIndex(gallery, identities, backend=backend)
            row[f"{backend}_build_s"] = round(time.perf_counter() - start, 2)
            row[f"{backend}_ms_per_query_single"] = round(1000 * per_query_seconds(index, queries[:32], 1), 3)
            row[f"{backend}_ms_per_query_batch256"] = round(1000 * per_query_seconds(index, queries, 256), 4)
            if backend == "numpy":
                exact = index.search(queries, k=10)[1]
            else:
                found = index.search(queries, k=10)[1]
                row["faiss_recall_at_10"] = round(float(np.mean([len(set(a) & set(e)) / 10
                                                                 for a, e in zip(found, exact)])), 4)
            del index
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
