"""Training throughput of MobileFaceNet and IResNet-50 with ArcFace, for a GPU on the JAX backend.

    KERAS_BACKEND=jax python scripts/train_speed.py                       # GPU: 112x112, batch 256
    KERAS_BACKEND=jax python scripts/train_speed.py --tiny                # CPU check: 32x32, batch 4
    python scripts/train_speed.py --precision float32 --jit-compile      # TensorFlow, this CPU

Random images (throughput does not depend on pixel values), 1000 classes, SGD; the first
``--warmup`` steps (compilation) are not timed.  Prints samples/s per backbone, and writes a
JSON line per backbone to ``--json`` when given.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_arcface.backbones import get_backbone  # noqa: E402
from keras_arcface.heads import ArcFaceLayer  # noqa: E402
from keras_arcface.training.model import build_training_model, compile_for_training  # noqa: E402


class RandomFaces(keras.utils.PyDataset):
    def __init__(self, batch, size, classes, steps, **kwargs):
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(batch, size, size, 3)).astype("float32")
        self.y = rng.integers(0, classes, batch).astype("int32")
        self.steps = steps

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return (self.x, self.y), self.y


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])  # wait for the step to finish
        self.times.append(time.perf_counter() - self._start)


def measure(backbone_name, args):
    keras.config.set_dtype_policy(args.precision)
    keras.utils.set_random_seed(0)
    backbone = get_backbone(backbone_name, input_shape=(args.image_size, args.image_size, 3),
                            embedding_size=512 if backbone_name.startswith("iresnet") else 128)
    model = build_training_model(backbone, ArcFaceLayer(args.num_classes, name="head"))
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    if args.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    compile_for_training(model, optimizer, args.jit_compile)
    timer = StepTimer()
    data = RandomFaces(args.batch_size, args.image_size, args.num_classes, args.warmup + args.steps)
    history = model.fit(data, epochs=1, verbose=0, callbacks=[timer])
    timed = timer.times[args.warmup:]
    median = float(np.median(timed))
    return {"backbone": backbone_name, "backend": keras.backend.backend(), "precision": args.precision,
            "devices": [str(d) for d in _devices()], "image_size": args.image_size,
            "batch_size": args.batch_size, "steps": len(timed), "median_step_s": median,
            "samples_per_s": args.batch_size / median, "final_loss": float(history.history["loss"][-1])}


def _devices():
    if keras.backend.backend() == "jax":
        import jax

        return jax.devices()
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["mobilefacenet", "iresnet50"])
    parser.add_argument("--precision", default="mixed_bfloat16",
                        choices=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--jit-compile", action="store_true", help="TensorFlow: XLA (JAX always compiles)")
    parser.add_argument("--tiny", action="store_true", help="32x32, batch 4, 3 timed steps: a CPU check")
    parser.add_argument("--json", help="append one JSON line per backbone to this file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.image_size, args.batch_size, args.steps, args.warmup, args.num_classes = 32, 4, 3, 1, 10
    for name in args.backbones:
        result = measure(name, args)
        print(f"{name:<14} {result['backend']} {result['precision']} batch {result['batch_size']} "
              f"{result['image_size']}px: {result['samples_per_s']:.1f} samples/s "
              f"(median step {result['median_step_s'] * 1000:.1f} ms, loss {result['final_loss']:.3f}) "
              f"on {result['devices']}", flush=True)
        if args.json:
            with open(args.json, "a") as handle:
                handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
