"""``keras-arcface demo-heads``: train a small model with each margin head and compare angles.

``keras-arcface demo-heads`` shows what the heads do, without any face data, on
an embedded, synthetic identity set (every class a random 32x32 prototype plus noise and
shifts).  It reports, on held-out samples, the mean angle between an embedding and its own
class centre and the mean angle to the nearest other centre: margin heads pull the first
down and push the second up.  Synthetic data says nothing about face-recognition accuracy.
"""

import time

import keras
import numpy as np
from keras import ops

from keras_arcface.heads import get_head

DEFAULT_HEADS = ("softmax", "normface", "sphereface", "cosface", "arcface", "combined")


def synthetic_identities(num_classes=40, per_class=20, size=32, seed=0):
    """Images (N, size, size, 1) in [-1, 1] and labels: a smooth prototype per class, shifted
    by up to one pixel, plus pixel noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((num_classes, size // 4, size // 4)).astype("float32")
    prototypes = np.stack([np.kron(c, np.ones((4, 4), "float32")) for c in coarse])
    images, labels = [], []
    for label, prototype in enumerate(prototypes):
        for _ in range(per_class):
            shifted = np.roll(prototype, rng.integers(-1, 2, 2), axis=(0, 1))
            images.append(shifted + 1.5 * rng.standard_normal((size, size)).astype("float32"))
            labels.append(label)
    images = np.clip(np.stack(images)[..., None] / 2.0, -1, 1).astype("float32")
    order = rng.permutation(len(images))
    return images[order], np.asarray(labels, "int32")[order]


def small_backbone(size=32, embedding_size=32):
    """Two strided convolutions and a linear embedding with BatchNorm, as face models end."""
    return keras.Sequential([
        keras.Input((size, size, 1)),
        keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(embedding_size),
        keras.layers.BatchNormalization(),
    ], name="backbone")


def angles_to_centres(embeddings, kernel, labels):
    """Mean angle (degrees) to the own centre and to the nearest other centre."""
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    w = kernel / np.linalg.norm(kernel, axis=0, keepdims=True)
    theta = np.degrees(np.arccos(np.clip(x @ w, -1, 1)))
    rows = np.arange(len(labels))
    own = theta[rows, labels]
    theta[rows, labels] = np.inf
    return float(own.mean()), float(theta.min(axis=1).mean())


def train_one(head_name, data, epochs=12, seed=0):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    num_classes = int(y_train.max()) + 1
    backbone = small_backbone(x_train.shape[1])
    images = keras.Input(x_train.shape[1:])
    labels = keras.Input((), dtype="int32")
    head = get_head(head_name, num_classes)
    model = keras.Model([images, labels], head([backbone(images), labels]))
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    history = model.fit([x_train, y_train], y_train, batch_size=32, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    embeddings = ops.convert_to_numpy(backbone(x_test, training=False))
    own, other = angles_to_centres(embeddings, ops.convert_to_numpy(head.kernel), y_test)
    logits = ops.convert_to_numpy(head(embeddings))
    accuracy = float((logits.argmax(axis=1) == y_test).mean())
    return {"head": head_name, "loss": history.history["loss"][-1], "own_deg": own, "other_deg": other,
            "accuracy": accuracy, "seconds": seconds}


def run_demo(heads=DEFAULT_HEADS, epochs=12, seed=0, print_fn=print):
    images, labels = synthetic_identities(seed=seed)
    split = int(0.75 * len(images))
    data = ((images[:split], labels[:split]), (images[split:], labels[split:]))
    print_fn(f"keras-arcface demo on synthetic identities ({int(labels.max()) + 1} classes, "
             f"{split} train / {len(images) - split} held-out images, {epochs} epochs, "
             f"backend {keras.backend.backend()}); synthetic data: no face-accuracy claim.")
    rows = []
    for name in heads:
        rows.append(train_one(name, data, epochs=epochs, seed=seed))
        row = rows[-1]
        print_fn(f"  trained {name:<10} in {row['seconds']:.1f} s")
    print_fn("")
    print_fn(f"{'head':<11}{'final loss':>11}{'held-out acc':>14}{'θ own (°)':>11}"
             f"{'θ nearest other (°)':>21}{'gap (°)':>9}")
    for row in rows:
        gap = row["other_deg"] - row["own_deg"]
        print_fn(f"{row['head']:<11}{row['loss']:>11.3f}{row['accuracy']:>14.2%}{row['own_deg']:>11.1f}"
                 f"{row['other_deg']:>21.1f}{gap:>9.1f}")
    return rows


