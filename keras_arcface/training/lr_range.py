"""The learning-rate range test (Smith, "Cyclical Learning Rates", WACV 2017; the fast.ai LR finder).

One short run raises the learning rate geometrically, lr_k = lr_min (lr_max / lr_min)^(k / (n-1)),
and records the loss of every step.  The useful range is where the (exponentially smoothed)
loss falls fastest; past its minimum the run diverges and stops.  Two common picks are
reported: the steepest descent of the smoothed loss against log lr, and a tenth of the
learning rate at its minimum.  The model, optimizer, data and augmentation are those of
:func:`keras_arcface.training.train` for the same :class:`TrainConfig` (``init_from``,
``freeze_batchnorm`` and ``init_head`` included); only the schedule differs, and distillation is
left out (the cross-entropy alone is searched).
"""

import dataclasses
import math

import keras
import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.training.config import TrainConfig
from keras_arcface.training.optimizers import make_optimizer


@keras.saving.register_keras_serializable(package="keras_arcface")
class ExponentialRamp(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = lr_min (lr_max / lr_min)^(step / (steps - 1)), held at lr_max afterwards."""

    def __init__(self, min_lr, max_lr, steps):
        if not 0 < min_lr < max_lr or steps < 2:
            raise InputError(f"need 0 < min_lr < max_lr and steps >= 2, got {min_lr}, {max_lr}, {steps}")
        self.min_lr, self.max_lr, self.steps = float(min_lr), float(max_lr), int(steps)

    def __call__(self, step):
        fraction = keras.ops.minimum(keras.ops.cast(step, "float32") / (self.steps - 1), 1.0)
        return self.min_lr * keras.ops.power(self.max_lr / self.min_lr, fraction)

    def values(self):
        return self.min_lr * (self.max_lr / self.min_lr) ** (np.arange(self.steps) / (self.steps - 1))

    def get_config(self):
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "steps": self.steps}


class StepLosses(keras.callbacks.Callback):
    """Each step's own loss, recovered from Keras' running epoch mean: l_k = k m_k - (k-1) m_(k-1).

    Stops training once the smoothed loss exceeds ``stop_factor`` x its minimum (after
    ``patience`` steps) or a loss is not finite, or after ``max_steps`` steps.
    """

    def __init__(self, smoothing=0.9, stop_factor=4.0, patience=5, max_steps=None):
        super().__init__()
        self.max_steps = max_steps
        self.smoothing, self.stop_factor, self.patience = float(smoothing), float(stop_factor), int(patience)
        self.losses, self.smoothed = [], []
        self.diverged = False
        self._in_epoch, self._mean, self._average = 0, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._in_epoch, self._mean = 0, 0.0

    def record(self, running_mean):
        self._in_epoch += 1
        k = self._in_epoch
        loss = k * running_mean - (k - 1) * self._mean
        self._mean = running_mean
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.diverged = True
            return False
        # Exponential moving average from 0 with Adam's bias correction (as the fast.ai finder).
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        self.smoothed.append(self._average / (1 - self.smoothing ** (len(self.smoothed) + 1)))
        if len(self.smoothed) > self.patience and self.smoothed[-1] > self.stop_factor * min(self.smoothed):
            self.diverged = True
            return False
        return True

    def on_train_batch_end(self, batch, logs=None):
        if not self.record(float((logs or {})["loss"])) or len(self.losses) == self.max_steps:
            self.model.stop_training = True


@dataclasses.dataclass
class LRRangeResult:
    learning_rates: list
    losses: list
    smoothed: list
    steepest: float
    minimum: float
    suggested: float
    diverged: bool

    def to_dict(self):
        return dataclasses.asdict(self)


def pick_learning_rates(learning_rates, smoothed):
    """(steepest, minimum): the lr of the most negative d(smoothed)/d(log lr) before the minimum,
    and the lr of the minimum.  A minimum within the first two steps means the ramp started too
    high: both are then the first learning rate."""
    lrs, smooth = np.asarray(learning_rates, float), np.asarray(smoothed, float)
    if len(smooth) < 3:
        raise InputError("the range test needs at least 3 finite steps to pick a learning rate")
    lowest = int(np.argmin(smooth))
    if lowest < 2:
        return float(lrs[0]), float(lrs[0])
    slopes = np.gradient(smooth[:lowest + 1], np.log(lrs[:lowest + 1]))
    return float(lrs[int(np.argmin(slopes))]), float(lrs[lowest])


def lr_range_test(config, faces=None, min_lr=1e-4, max_lr=3.0, steps=100, smoothing=0.9, stop_factor=4.0,
                  verbose=0):
    """Run the range test for ``config`` (a :class:`TrainConfig` or its dict); returns :class:`LRRangeResult`."""
    from keras_arcface.training.pretrained import adopt_initial_spec, initial_source
    from keras_arcface.training.run import build_run_model, fit_verbosity, load_faces, make_batches

    if not isinstance(config, TrainConfig):
        config = TrainConfig(**config)
    config = dataclasses.replace(config, teacher="", teacher_embedding_size=0)
    source = initial_source(config.init_from) if config.init_from else None  # resolved once, as in train
    adopt_initial_spec(config, source)  # the batches' normalisation is the init_from model's
    faces = faces if faces is not None else load_faces(config)
    keras.config.set_dtype_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    batches = make_batches(dataclasses.replace(config, max_steps_per_epoch=0), faces)
    # Whole epochs (a PyDataset cut short by steps_per_epoch does not restart at the next
    # epoch); the recorder stops the run after ``steps`` steps.
    epochs = math.ceil(steps / len(batches))
    ramp = ExponentialRamp(min_lr, max_lr, steps)
    _, _, model = build_run_model(config, faces, make_optimizer(config, len(batches), schedule=ramp), distill=False,
                                  starting_from=source)
    recorder = StepLosses(smoothing=smoothing, stop_factor=stop_factor, max_steps=steps)
    model.fit(batches, epochs=epochs, callbacks=[recorder], verbose=fit_verbosity(verbose))
    finite = len(recorder.smoothed)
    learning_rates = ramp.values()[:finite].tolist()
    steepest, minimum = pick_learning_rates(learning_rates, recorder.smoothed)
    return LRRangeResult(learning_rates, recorder.losses[:finite], recorder.smoothed, steepest, minimum,
                         suggested=minimum / 10, diverged=recorder.diverged)


def plot_range_test(result, path):
    """Loss (raw and smoothed) against log lr with the picks marked; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(result.learning_rates, result.losses[:len(result.learning_rates)], alpha=0.3, label="step loss")
    axes.plot(result.learning_rates, result.smoothed, label="smoothed")
    for value, style, name in ((result.steepest, "--", "steepest"), (result.suggested, ":", "min / 10")):
        axes.axvline(value, linestyle=style, color="k", label=f"{name}: {value:.3g}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
