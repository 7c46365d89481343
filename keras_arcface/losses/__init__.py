"""Losses that are not a head: the metric-learning alternative to margin softmax."""

import keras_arcface.runtime.keras_required  # noqa: F401  (first: without Keras, one error naming the extra)
from keras_arcface.losses.triplet import TripletLoss, pairwise_distances

__all__ = ["TripletLoss", "pairwise_distances"]
