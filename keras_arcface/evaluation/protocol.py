"""The verification protocol: LFW's 10 folds, ROC, AUC, TAR at FAR, the best threshold.

Scores are similarities (higher = same person); a pair is predicted "same" when its score
is above the threshold.  Candidate thresholds are the midpoints between consecutive distinct
scores (and one below / above all).
"""

import numpy as np

from keras_arcface.errors import InputError


def _candidates(scores):
    distinct = np.unique(scores)
    middle = (distinct[:-1] + distinct[1:]) / 2
    return np.concatenate([[distinct[0] - 1e-6], middle, [distinct[-1] + 1e-6]])


def accuracy_at(scores, same, threshold):
    return float(np.mean((scores > threshold) == same))


def best_threshold(scores, same):
    """(threshold, accuracy) maximising accuracy; the lowest such threshold on ties."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    candidates = _candidates(scores)
    order = np.argsort(scores)
    sorted_scores, sorted_same = scores[order], same[order]
    # pairs at or below each candidate are predicted "different"
    below = np.searchsorted(sorted_scores, candidates, side="right")
    same_below = np.concatenate([[0], np.cumsum(sorted_same)])[below]
    different_below = below - same_below
    correct = different_below + (same.sum() - same_below)
    best = int(np.argmax(correct))
    return float(candidates[best]), float(correct[best] / len(scores))


def kfold_accuracy(scores, same, folds=10):
    """LFW protocol: fold k is pairs [k n/folds, (k+1) n/folds) in file order; the threshold that
    maximises accuracy on the other folds is applied to fold k.  (accuracies, thresholds)."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    if len(scores) % folds:
        raise InputError(f"{len(scores)} pairs do not split into {folds} equal folds")
    size = len(scores) // folds
    accuracies, thresholds = [], []
    for k in range(folds):
        test = np.zeros(len(scores), bool)
        test[k * size:(k + 1) * size] = True
        threshold, _ = best_threshold(scores[~test], same[~test])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(scores[test], same[test], threshold))
    return np.array(accuracies), np.array(thresholds)


def roc_curve(scores, same):
    """(false accept rate, true accept rate, thresholds), thresholds decreasing."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_same = scores[order], same[order]
    last_of_group = np.r_[np.diff(sorted_scores) != 0, True]
    tp = np.cumsum(sorted_same)[last_of_group]
    fp = np.cumsum(~sorted_same)[last_of_group]
    tar = np.r_[0.0, tp / max(1, same.sum())]
    far = np.r_[0.0, fp / max(1, (~same).sum())]
    return far, tar, np.r_[np.inf, sorted_scores[last_of_group]]


def auc(far, tar):
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def tar_at_far(scores, same, far_target):
    """TAR at the strictest point with FAR <= target; None when too few negative pairs
    (fewer than 1 / target) make that FAR unmeasurable."""
    negatives = int((~np.asarray(same, bool)).sum())
    if negatives * far_target < 1:
        return None
    far, tar, _ = roc_curve(scores, same)
    return float(tar[far <= far_target + 1e-12].max())


#: The false-accept rates whose thresholds model cards record (``verify --far``).
CARD_FARS = ("1e-2", "1e-3", "1e-4")


def impostor_scores(embeddings, identities, block=2048):
    """Cosine scores of every pair of unit embeddings whose identities differ (each pair once)."""
    embeddings = np.asarray(embeddings, np.float32)
    identities = np.asarray(identities)
    chunks = []
    for start in range(0, len(embeddings), block):
        rows = embeddings[start:start + block]
        scores = rows @ embeddings[start:].T
        upper = np.arange(start, start + len(rows))[:, None] < np.arange(start, len(embeddings))[None, :]
        differ = identities[start:start + block, None] != identities[None, start:]
        chunks.append(scores[upper & differ])
    return np.concatenate(chunks)


def threshold_at_far(impostor, far):
    """The lowest threshold at which at most ``far`` of the impostor scores are accepted
    (score >= threshold); raises when ``far`` is below what this many impostor pairs can measure."""
    impostor = np.sort(np.asarray(impostor, np.float64))[::-1]
    if len(impostor) * far < 1:
        raise InputError(f"FAR {far:g} needs at least {int(np.ceil(1 / far))} impostor pairs, got {len(impostor)}")
    allowed = int(np.floor(far * len(impostor)))
    return float(np.nextafter(impostor[allowed], np.inf))


def verification_report(scores, same, folds=10):
    """Everything the eval command prints, as plain numbers."""
    accuracies, thresholds = kfold_accuracy(scores, same, folds)
    far, tar, _ = roc_curve(scores, same)
    threshold, accuracy = best_threshold(scores, same)
    return {
        "pairs": int(len(scores)), "folds": folds,
        "accuracy_mean": float(accuracies.mean()), "accuracy_std": float(accuracies.std()),
        "fold_accuracies": accuracies.tolist(), "fold_thresholds": thresholds.tolist(),
        "auc": auc(far, tar),
        "tar_at_far": {str(f): tar_at_far(scores, same, f) for f in (1e-1, 1e-2, 1e-3)},
        "best_threshold": threshold, "best_threshold_accuracy": accuracy,
    }


def plot_roc(scores, same, path, label="model"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar, _ = roc_curve(scores, same)
    figure, axes = plt.subplots(figsize=(5.5, 4.5))
    axes.plot(np.maximum(far, 1e-4), tar, label=f"{label} (AUC {auc(far, tar):.4f})")
    axes.set_xscale("log")
    axes.set_xlim(1e-3, 1)
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("true accept rate")
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
