"""Run with KERAS_BACKEND=jax and 4 host devices: Partial FC's centres sharded by ModelParallel.

Trains the same tiny model twice (one device, then the kernel sharded over a 1 x 4 mesh) and
prints JSON: the kernel's sharding and both runs' step losses (they must agree).
"""

import json

import jax
import keras
import numpy as np

from keras_arcface.heads import PartialFCLayer
from keras_arcface.heads.partial_fc import partial_fc_layout_map


def train(distribution=None):
    keras.utils.set_random_seed(0)
    scope = distribution.scope() if distribution else keras.utils.CustomObjectScope({})
    with scope:
        images = keras.Input((8,))
        labels = keras.Input((), dtype="int32")
        embeddings = keras.layers.Dense(16, name="embedding")(images)
        head = PartialFCLayer(10, 0.5, "arcface", {"scale": 16.0, "margin": 0.3}, num_shards=4, seed=5,
                             name="head")
        model = keras.Model([images, labels], head([embeddings, labels]))
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8)).astype("float32")
    y = rng.integers(0, 10, 32).astype("int32")
    losses = [float(model.train_on_batch([x[i:i + 4], y[i:i + 4]], y[i:i + 4])) for i in range(0, 32, 4)]
    return head, losses


devices = jax.devices()
_, single = train()
mesh = keras.distribution.DeviceMesh((1, len(devices)), ["batch", "model"], devices)
distribution = keras.distribution.ModelParallel(layout_map=partial_fc_layout_map(mesh), batch_dim_name="batch")
head, sharded = train(distribution)
sharding = head.kernel.value.sharding
print(json.dumps({
    "devices": len(devices), "kernel_shape": list(head.kernel.shape),
    "shard_shape": list(sharding.shard_shape(tuple(head.kernel.shape))),
    "spec": [None if s is None else s for s in sharding.spec],
    "single_losses": single, "sharded_losses": sharded,
}))
