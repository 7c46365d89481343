"""Run in a fresh process: Partial FC under MirroredStrategy on 2 logical CPUs; prints JSON.

Each replica holds a full copy of the centres (MirroredStrategy replicates variables), samples
its own classes from its share of the batch, and the summed gradients keep the copies equal.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_arcface.heads import PartialFCLayer  # noqa: E402

keras.utils.set_random_seed(0)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
with strategy.scope():
    images = keras.Input((8,))
    labels = keras.Input((), dtype="int32")
    embeddings = keras.layers.Dense(16)(images)
    head = PartialFCLayer(40, 0.25, "arcface", {"scale": 16.0, "margin": 0.3}, seed=5, name="head")
    model = keras.Model([images, labels], head([embeddings, labels]))
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 8)).astype("float32")
y = rng.integers(0, 40, 64).astype("int32")
history = model.fit([x, y], y, batch_size=8, epochs=4, verbose=0, shuffle=False)
copies = head.kernel.value.values if hasattr(head.kernel.value, "values") else [head.kernel.value]
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync, "kernel_copies": len(copies),
    "copies_equal": bool(all(np.array_equal(copies[0].numpy(), c.numpy()) for c in copies)),
    "losses": history.history["loss"],
}))
