"""Training: config, optimizers, strategies, callbacks, the train entry point and the LR range test.

Names are imported when first used, so ``keras_arcface.training.config`` (the plain-data
:class:`TrainConfig`, from which the command line builds its flags) loads without Keras.
"""

import importlib

#: public name -> the module of this package that defines it
_NAMES = {"TrainingDivergedError": "callbacks", "TrainConfig": "config", "LRRangeResult": "lr_range",
          "lr_range_test": "lr_range", "MarginTrainingModel": "model", "build_training_model": "model",
          "make_optimizer": "optimizers", "TrainResult": "run", "load_trained": "run", "train": "run"}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
