"""Devices and strategies: MirroredStrategy on TensorFlow, DataParallel on JAX."""

import contextlib

import keras

from keras_arcface.errors import InputError


def available_devices():
    """Accelerators when present, else CPUs (logical CPUs on TensorFlow count)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return [device.name for device in devices]
    if backend == "jax":
        import jax

        return list(jax.devices())
    return ["cpu"]


def distribution_scope(devices):
    """A context for building and compiling the model on ``devices`` replicas.

    TensorFlow: ``MirroredStrategy`` over the first ``devices`` logical devices (returns its
    scope). JAX: sets ``keras.distribution.DataParallel`` (batch split over devices).
    """
    if devices <= 1:
        return contextlib.nullcontext()
    found = available_devices()
    if len(found) < devices:
        raise InputError(f"{devices} devices requested, {len(found)} available: {found}")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        chosen = found[:devices]
        # On CPUs, reduce through one device: TF's CPU collectives cache each instance key's
        # shape per process, so a second MirroredStrategy training of another model in the same
        # process fails with "Shape mismatch in the collective instance 100".
        cross_device_ops = (tf.distribute.ReductionToOneDevice() if all("CPU" in d for d in chosen)
                            else None)
        return tf.distribute.MirroredStrategy(chosen, cross_device_ops=cross_device_ops).scope()
    if backend == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found[:devices]))
        return contextlib.nullcontext()
    raise InputError(f"multi-device training is not supported on backend {backend}")

