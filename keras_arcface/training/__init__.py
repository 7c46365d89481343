"""Training: config, optimizers, strategies, callbacks, the train entry point and the LR range test."""

from keras_arcface.training.callbacks import TrainingDivergedError
from keras_arcface.training.config import TrainConfig
from keras_arcface.training.lr_range import LRRangeResult, lr_range_test
from keras_arcface.training.model import MarginTrainingModel, build_training_model
from keras_arcface.training.optimizers import make_optimizer
from keras_arcface.training.train import TrainResult, load_trained, train

__all__ = ["LRRangeResult", "MarginTrainingModel", "TrainConfig", "TrainResult",
           "TrainingDivergedError", "build_training_model", "load_trained",
           "lr_range_test", "make_optimizer", "train"]
