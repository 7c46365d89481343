"""Run in a fresh process: 2 logical CPUs, MirroredStrategy x precision x XLA; prints JSON.

Used by test_distributed.py (logical devices must be configured before TensorFlow starts).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_arcface.heads import ArcFaceLayer  # noqa: E402
from keras_arcface.training.model import build_training_model, compile_for_training  # noqa: E402


class StepLosses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def tiny_backbone(overflow_case):
    if overflow_case:  # a dense embedding with BatchNorm: float16 gradients overflow unevenly
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.BatchNormalization()])
    return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3, strides=2, padding="same"),
                             keras.layers.PReLU(shared_axes=[1, 2]), keras.layers.Flatten(),
                             keras.layers.Dense(16)])


def data(overflow_case, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + ((8,) if overflow_case else (16, 16, 3))).astype("float32")
    y = rng.integers(0, 6, n).astype("int32")
    return [x, y], y


def run(policy, jit, mirrored, overflow_case=False, plain_keras_model=False, steps=8, collectives=False):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    # ReductionToOneDevice, as keras_arcface.training.distribute uses on CPUs; collectives=True
    # keeps TF's default all-reduce (what GPUs use), where Keras' loss-scale check goes wrong.
    cross_device_ops = None if collectives else tf.distribute.ReductionToOneDevice()
    strategy = (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"], cross_device_ops=cross_device_ops)
                if mirrored else tf.distribute.get_strategy())
    with strategy.scope():
        model = build_training_model(tiny_backbone(overflow_case), ArcFaceLayer(6, name="head"),
                                     per_replica_xla=jit and mirrored)
        if plain_keras_model:
            model = keras.Model(model.inputs, model.outputs)
        optimizer = keras.optimizers.SGD(0.1 if overflow_case else 0.02, momentum=0.0 if overflow_case else 0.9)
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        compile_for_training(model, optimizer, jit)
    batch = 16 if overflow_case else 8
    inputs, labels = data(overflow_case, n=batch * steps)
    recorder = StepLosses()
    model.fit(inputs, labels, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    return {"losses": recorder.losses, "class": type(model).__name__,
            "iterations": int(model.optimizer.iterations.numpy())}


def odd_batch_refusal():
    """What a placement over the 2 CPUs says of a global batch of 7."""
    from keras_arcface.errors import InputError
    from keras_arcface.training.distribute import TrainingPlacement

    try:
        TrainingPlacement(devices=2, batch_size=7)
    except InputError as error:
        return str(error)
    return None


def main(mode, combinations=()):
    """``matrix POLICY/JIT ...`` (e.g. ``float32/xla``): each combination on one device and on the 2 CPUs, and a
    placement's refusal of an odd batch; ``overflow-*``: the float16 overflow scenario."""
    results = {}
    if mode == "matrix":
        results["odd-batch"] = odd_batch_refusal()
        for combination in combinations:
            policy, compiled = combination.split("/")
            for mirrored in (False, True):
                results[f"{combination}/mirrored={mirrored}"] = run(policy, compiled == "xla", mirrored)
    else:
        # float16 overflow on one replica only, with TF's default all-reduce (one run a process:
        # TF's CPU collectives cache instance shapes per process).
        jit = mode.endswith("-jit")
        results[mode] = run("mixed_float16", jit, True, overflow_case=True, collectives=True,
                            plain_keras_model=mode.startswith("overflow-keras"))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "matrix", sys.argv[2:])
