"""Training: config, optimizers, strategies, callbacks and the train entry point."""

from keras_arcface.training.callbacks import TrainingDivergedError
from keras_arcface.training.config import TrainConfig
from keras_arcface.training.model import MarginTrainingModel, build_training_model
from keras_arcface.training.optimizers import make_optimizer
from keras_arcface.training.train import TrainResult, load_trained, train

__all__ = ["MarginTrainingModel", "TrainConfig", "TrainResult",
           "TrainingDivergedError", "build_training_model", "load_trained", "make_optimizer", "train"]
