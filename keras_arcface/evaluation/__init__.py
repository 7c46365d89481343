"""Verification evaluation: pairs files, the 10-fold protocol, ROC, any embedding model."""

from keras_arcface.evaluation.evaluate import (
    PairScores,
    embed_files,
    evaluate_calibrated,
    evaluate_pairs,
    format_report,
    score_pairs,
)
from keras_arcface.evaluation.models import save_threshold, threshold_file
from keras_arcface.evaluation.pairs import Pair, PairsFormatError, read_pairs
from keras_arcface.evaluation.protocol import (
                                               auc,
                                               best_threshold,
                                               kfold_accuracy,
                                               roc_curve,
                                               tar_at_far,
                                               verification_report,
)

__all__ = ["Pair", "PairScores", "PairsFormatError", "auc", "best_threshold", "embed_files", "evaluate_calibrated",
           "evaluate_pairs", "format_report", "kfold_accuracy", "read_pairs", "roc_curve", "save_threshold",
           "score_pairs", "tar_at_far", "threshold_file", "verification_report"]
