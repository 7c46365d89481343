"""Rank-1 identification on LFW with a zoo model (default: the zoo's default in its runtime format).

Protocol: every person with at least two aligned crops puts their first crop (file order) in the
gallery and the others become queries; every person with a single crop joins the gallery as a
distractor.  Rank-1 is the share of queries whose best gallery identity is their own (exact search,
``FaceIndex``); also reported: rank-5, rank-1 without distractors, and how many queries clear the
model's threshold (open-set acceptance).

    python3 scripts/lfw_identification.py --lfw ../shared/data/lfw/aligned [--model sface] [--cache emb.npz]
"""

import argparse
import json
import pathlib
import time

import numpy as np

from keras_arcface.embedding import load_embedder
from keras_arcface.evaluation.evaluate import load_faces
from keras_arcface.gallery import FaceIndex


def embed_all(embedder, paths, batch=256):
    chunks = []
    for start in range(0, len(paths), batch):
        chunks.append(embedder.embed(load_faces(paths[start:start + batch], embedder.spec)))  # onto its crop
    return np.concatenate(chunks)


def rank_hits(index, queries, truth, ranks=(1, 5)):
    matches = index.identify_embeddings(queries, top_k=max(ranks))
    return {rank: float(np.mean([t in [m.identity for m in row[:rank]] for row, t in zip(matches, truth)]))
            for rank in ranks}, matches


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", required=True, help="aligned LFW crops, <root>/<Name>/<Name>_NNNN.jpg")
    parser.add_argument("--model", help="zoo name or model file (default: the zoo's default model)")
    parser.add_argument("--cache", help="an .npz of the embeddings (written if missing, read if present)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    embedder = load_embedder(args.model)
    root = pathlib.Path(args.lfw)
    paths = sorted(root.rglob("*.jpg"))
    names = [str(p.relative_to(root)) for p in paths]
    start = time.perf_counter()
    if args.cache and pathlib.Path(args.cache).is_file():
        cached = np.load(args.cache)
        assert cached["paths"].tolist() == names, "the cache holds other files"
        embeddings = cached["embeddings"]
    else:
        embeddings = embed_all(embedder, paths)
        if args.cache:
            np.savez(args.cache, paths=np.array(names), embeddings=embeddings)
    embed_seconds = time.perf_counter() - start
    identities = np.array([p.parent.name for p in paths])
    first = {}
    for i, identity in enumerate(identities):
        first.setdefault(identity, i)
    counts = {identity: int((identities == identity).sum()) for identity in first}
    gallery = sorted(first[identity] for identity in first if counts[identity] >= 2)
    distractors = sorted(first[identity] for identity in first if counts[identity] == 1)
    queries = [i for i in range(len(paths)) if counts[identities[i]] >= 2 and i != first[identities[i]]]
    model = str(getattr(embedder, "zoo_name", None) or embedder.path) + f":{getattr(embedder, 'format', '')}"
    full = FaceIndex(embeddings[gallery + distractors], identities[gallery + distractors], model=model,
                     threshold=embedder.threshold)
    closed = FaceIndex(embeddings[gallery], identities[gallery], model=model)
    start = time.perf_counter()
    hits, matches = rank_hits(full, embeddings[queries], identities[queries])
    search_seconds = time.perf_counter() - start
    closed_hits, _ = rank_hits(closed, embeddings[queries], identities[queries])
    accepted = float(np.mean([full.is_known(row[0]) for row in matches]))
    correct_and_accepted = float(np.mean([full.is_known(row[0]) and row[0].identity == t
                                          for row, t in zip(matches, identities[queries])]))
    report = {"model": model, "images": len(paths), "gallery_people": len(gallery), "distractors": len(distractors),
              "queries": len(queries), "rank1": hits[1], "rank5": hits[5], "rank1_without_distractors": closed_hits[1],
              "threshold": embedder.threshold, "queries_above_threshold": accepted,
              "rank1_and_above_threshold": correct_and_accepted,
              "embed_seconds": round(embed_seconds, 1), "search_seconds": round(search_seconds, 2)}
    print(json.dumps(report, indent=1))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
