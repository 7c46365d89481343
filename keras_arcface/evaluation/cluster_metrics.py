"""How well clusters match identities: the pairwise and BCubed precision, recall and F-measure of the
face-clustering literature (Otto, Wang and Jain, TPAMI 2018; Amigo et al. 2009 for BCubed).  A face left
out of every cluster (label -1) counts as a cluster of its own."""

import numpy as np


def _as_singletons(predicted):
    predicted = np.asarray(predicted, np.int64).copy()
    loose = predicted < 0
    predicted[loose] = predicted.max(initial=-1) + 1 + np.arange(int(loose.sum()))
    return predicted


def _pairs(counts):
    counts = np.asarray(counts, np.float64)
    return float(np.sum(counts * (counts - 1) / 2))


def clustering_scores(predicted, truth):
    """``{"pairwise": {precision, recall, f}, "bcubed": {precision, recall, f}, "clusters"}`` of predicted
    cluster labels against true identities (any hashable labels)."""
    predicted = _as_singletons(predicted)
    _, truth = np.unique(np.asarray(truth), return_inverse=True)
    cells = predicted * (truth.max() + 1) + truth
    _, cell_sizes = np.unique(cells, return_counts=True)
    cluster_sizes, class_sizes = np.bincount(predicted), np.bincount(truth)
    together, predicted_pairs, true_pairs = _pairs(cell_sizes), _pairs(cluster_sizes), _pairs(class_sizes)
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    # BCubed: each face's share of its cluster that is its identity, and of its identity that is its cluster
    _, cell_of_face = np.unique(cells, return_inverse=True)
    overlap = cell_sizes[cell_of_face].astype(np.float64)
    b_precision = float(np.mean(overlap / cluster_sizes[predicted]))
    b_recall = float(np.mean(overlap / class_sizes[truth]))

    def f(p, r):
        return 2 * p * r / (p + r) if p + r else 0.0

    return {"pairwise": {"precision": precision, "recall": recall, "f": f(precision, recall)},
            "bcubed": {"precision": b_precision, "recall": b_recall, "f": f(b_precision, b_recall)},
            "clusters": int(len(np.unique(predicted)))}
