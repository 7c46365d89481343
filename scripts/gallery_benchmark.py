"""Build and query time of FaceIndex, exact (numpy) against FAISS HNSW, at growing gallery sizes.

Synthetic unit vectors stand in for embeddings: the gallery is uniform on the sphere (the hardest
case for a graph index: real face embeddings cluster by identity), and each query is a gallery
entry moved to cosine ``--match-cosine`` (0.7, a typical same-person score of the default model on
LFW) from it, as a new photo of an enrolled person.  Reported: recall@10 of HNSW against the exact
search, and how often each backend ranks the planted match first.  Query time is per query, for
one query at a time (a person at a door) and for a batch of 256 (deduplicating a photo library).

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
    parser.add_argument("--ef-search", nargs="+", type=int, default=[128, 512, 2048],
                        help="HNSW search breadths to measure on one graph")
    parser.add_argument("--match-cosine", type=float, default=0.7, help="cosine of each query to its gallery entry")
    parser.add_argument("--json", help="write the table here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        gallery = unit_vectors(rng, size, args.dim)
        sources = rng.choice(size, args.queries, replace=False)
        noise = unit_vectors(rng, args.queries, args.dim)
        noise -= np.sum(noise * gallery[sources], axis=1, keepdims=True) * gallery[sources]  # orthogonal part
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        c = args.match_cosine
        queries = (c * gallery[sources] + np.sqrt(1 - c * c) * noise).astype(np.float32)
        identities = np.arange(size).astype(str)
        row = {"entries": size, "dim": args.dim, "megabytes": round(gallery.nbytes / 2**20, 1)}
        for backend in ("numpy", "faiss"):
            start = time.perf_counter()
            index = FaceIndex(gallery, identities, backend=backend)
            row[f"{backend}_build_s"] = round(time.perf_counter() - start, 2)
            for ef in ([None] if backend == "numpy" else args.ef_search):
                name = backend if ef is None else f"faiss_ef{ef}"
                if ef is not None:
                    index.ef_search = ef
                row[f"{name}_ms_per_query_single"] = round(1000 * per_query_seconds(index, queries[:32], 1), 3)
                row[f"{name}_ms_per_query_batch256"] = round(1000 * per_query_seconds(index, queries, 256), 4)
                found = index.search(queries, k=10)[1]
                row[f"{name}_planted_match_rank1"] = round(float(np.mean(found[:, 0] == sources)), 4)
                if ef is None:
                    exact = found
                else:
                    row[f"{name}_recall_at_10"] = round(float(np.mean([len(set(a) & set(e)) / 10
                                                                        for a, e in zip(found, exact)])), 4)
            del index
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
