"""Face clustering measured on the published protocol: all 13,233 LFW crops (5,749 people, most seen once),
and the CelebA hold-out benchmark's images, with the default model and SFace, each clustering method at the
model's FAR 1e-3 threshold (and the default method at FAR 1e-2 and 1e-4 beside it); pairwise and BCubed
precision / recall / F, the number of clusters, and the time.  ``--scale N``: time and peak memory of the
default method on N faces (LFW's embeddings plus synthetic people drawn around them).

    python3 scripts/cluster_benchmark.py [--data ../shared/data] [--cache /tmp/cluster-cache]
        [--models face-reidentification-retail-0095 sface] [--json docs/clustering.json]
    python3 scripts/cluster_benchmark.py --scale 100000

Published on all of LFW: Otto, Wang and Jain (TPAMI 2018), approximate rank-order clustering, pairwise F 0.87.
"""

import argparse
import json
import pathlib
import resource
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_arcface.clustering import METHODS, cluster_embeddings  # noqa: E402
from keras_arcface.evaluation.cluster_metrics import clustering_scores  # noqa: E402
from keras_arcface.evaluation.face_sets import embeddings_of, synthetic_faces  # noqa: E402
from keras_arcface.zoo import default_model  # noqa: E402

FARS = (1e-2, 1e-3, 1e-4)


def reference_clustering(embeddings, threshold, method):
    """The implementations ours is checked against (benchmark only): scikit-learn's average linkage restricted
    to the same neighbour graph (it averages over the graph's edges), and SciPy's exact average linkage over
    the dense N x N distances (what ours must equal; 13,233 faces take 0.7 GB)."""
    if method == "scikit-learn graph average":
        from scipy.sparse import coo_matrix
        from sklearn.cluster import AgglomerativeClustering

        from keras_arcface.clustering import neighbour_graph

        indices, _ = neighbour_graph(embeddings)
        rows = np.repeat(np.arange(len(embeddings)), indices.shape[1])
        graph = coo_matrix((np.ones(len(rows)), (rows, indices.ravel())), shape=(len(embeddings),) * 2).tocsr()
        model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                        connectivity=graph + graph.T, distance_threshold=1.0 - threshold,
                                        compute_full_tree=True)
        return model.fit_predict(embeddings)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(embeddings.astype(np.float64), method="average", metric="cosine")
    return fcluster(tree, t=1.0 - threshold, criterion="distance")


#: Other implementations, measured at FAR 1e-3 beside ours.
REFERENCES = ("scikit-learn graph average", "scipy dense average")


def measure(embeddings, identities, threshold, method):
    start = time.perf_counter()
    labels = (reference_clustering(embeddings, threshold, method) if method in REFERENCES
              else cluster_embeddings(embeddings, threshold, method))
    seconds = time.perf_counter() - start
    scores = clustering_scores(labels, identities)
    return {"seconds": round(seconds, 1), "clusters": scores["clusters"],
            "pairwise": {k: round(v, 4) for k, v in scores["pairwise"].items()},
            "bcubed": {k: round(v, 4) for k, v in scores["bcubed"].items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--cache", default=None, help="folder for the embeddings (reused when present)")
    parser.add_argument("--models", nargs="+", default=None, help="zoo names (default: the default model, sface)")
    parser.add_argument("--json", default=str(ROOT / "docs" / "clustering.json"))
    parser.add_argument("--scale", type=int, help="only time the default method on this many faces")
    args = parser.parse_args()

    names = args.models or [default_model(), "sface"]
    lfw = pathlib.Path(args.data) / "lfw" / "aligned"
    if args.scale:
        real, _, reference = embeddings_of(names[0], lfw, args.cache)
        faces = synthetic_faces(real, args.scale)
        threshold, _ = reference.threshold_at_far(1e-3)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        labels = cluster_embeddings(faces, threshold)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{len(faces)} faces ({len(real)} real), {names[0]}, average linkage at FAR 1e-3: "
              f"{len(np.unique(labels))} clusters in {seconds:.0f} s; peak memory {peak:.0f} MiB "
              f"({before:.0f} MiB before clustering)")
        return
    sets = {"LFW (13,233 crops)": lfw, "CelebA hold-out": ROOT / "benchmarks" / "celeba-holdout" / "images"}
    report = {"command": "python3 scripts/cluster_benchmark.py", "results": []}
    for name in names:
        for set_name, root in sets.items():
            embeddings, identities, reference = embeddings_of(name, root, args.cache)
            for method in METHODS + REFERENCES:
                for far in (FARS if method == "average" else (1e-3,)):
                    threshold, _ = reference.threshold_at_far(far)
                    row = {"model": str(reference), "set": set_name, "faces": len(embeddings),
                           "identities": int(len(np.unique(identities))), "method": method, "far": far,
                           "threshold": threshold, **measure(embeddings, identities, threshold, method)}
                    report["results"].append(row)
                    print(f"{row['model']} {set_name} {method} FAR {far:g} (threshold {threshold:.4f}): pairwise P "
                          f"{row['pairwise']['precision']:.4f} R {row['pairwise']['recall']:.4f} F "
                          f"{row['pairwise']['f']:.4f}, BCubed F {row['bcubed']['f']:.4f}, {row['clusters']} clusters "
                          f"({row['seconds']} s)", flush=True)
    pathlib.Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.json}")


if __name__ == "__main__":
    main()
