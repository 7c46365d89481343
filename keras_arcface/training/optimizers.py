"""Optimizers with linear warm-up and cosine decay, decoupled weight decay, loss scaling."""

import keras

# Normalisation and activation parameters are not decayed (InsightFace decays conv/dense only).
NO_DECAY_NAMES = ["gamma", "beta", "bias", "alpha"]


def learning_rate_schedule(config, steps_per_epoch):
    """Linear warm-up from 0 over ``warmup_epochs``, then cosine decay over the rest."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(int(round(config.warmup_epochs * steps_per_epoch)), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.learning_rate,
        decay_steps=max(1, total - warmup), alpha=config.final_lr_fraction,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)


def make_optimizer(config, steps_per_epoch, schedule=None):
    """SGD with momentum or AdamW, decoupled weight decay, wrapped for mixed_float16.

    ``schedule``: another learning-rate schedule (the LR range test's ramp); by default the
    config's warm-up and cosine decay.
    """
    schedule = schedule if schedule is not None else learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum,
                                         weight_decay=config.weight_decay or None)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    if config.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY_NAMES)
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
