"""Losses that are not a head: the metric-learning alternative to margin softmax."""

from keras_arcface.losses.triplet import TripletLoss, pairwise_distances

__all__ = ["TripletLoss", "pairwise_distances"]
