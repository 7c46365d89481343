"""Training throughput (samples/s) and peak memory of MobileFaceNet and IResNet-18 with ArcFace,
in TensorFlow graph mode, TensorFlow XLA and Keras on JAX: one process per row.

    python scripts/train_speed.py                          # this CPU: batch 64, 10,000 classes, 3 modes
    python scripts/train_speed.py --modes jax --precision mixed_bfloat16 --batch-size 256 \\
        --backbones mobilefacenet iresnet50                # a GPU (JAX, bfloat16)
    python scripts/train_speed.py --tiny                   # a check: 32x32, batch 4, 10 classes

Each row trains ``--warmup`` + ``--steps`` steps of SGD with momentum on random images (throughput
does not depend on pixel values; every step gets another of 4 batches) and reports the median of
the timed steps.  Peak memory: the process's peak resident set, and the accelerator's peak where
there is one.  ``--json`` appends one JSON line per row.
"""

import argparse
import json
import os
import subprocess
import sys
import time

#: mode -> (KERAS_BACKEND, jit_compile): graph and XLA on TensorFlow; JAX always compiles.
MODES = {"graph": ("tensorflow", False), "xla": ("tensorflow", True), "jax": ("jax", True)}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Before Keras or TensorFlow load, as in a user's program: the package sets its oneDNN default (its
# __init__); the rows' processes inherit it.  Scripts that import this module get it too.
import keras_arcface  # noqa: E402,F401


def benchmark_model(backbone_name, image_size, num_classes, jit_compile, precision="float32"):
    """The compiled training model every speed figure times: ``backbone_name`` (512-d for IResNets,
    128-d else) with ArcFace over ``num_classes``, SGD with momentum 0.9, seed 0, under ``precision``."""
    import keras

    from keras_arcface.backbones import get_backbone
    from keras_arcface.heads import ArcFaceLayer
    from keras_arcface.training.model import build_training_model, compile_for_training

    keras.config.set_dtype_policy(precision)
    keras.utils.set_random_seed(0)
    backbone = get_backbone(backbone_name, input_shape=(image_size, image_size, 3),
                            embedding_size=512 if backbone_name.startswith("iresnet") else 128)
    model = build_training_model(backbone, ArcFaceLayer(num_classes, name="head"))
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return compile_for_training(model, optimizer, jit_compile)


def measure(backbone_name, mode, args):
    """One row, in this process (the backend was chosen by the environment before Keras loaded)."""
    import keras
    import numpy as np

    class RandomFaces(keras.utils.PyDataset):
        def __init__(self, steps, **kwargs):
            super().__init__(**kwargs)
            rng = np.random.default_rng(0)
            shape = (args.batch_size, args.image_size, args.image_size, 3)
            self.batches = [(rng.normal(size=shape).astype("float32"),
                             rng.integers(0, args.num_classes, args.batch_size).astype("int32")) for _ in range(4)]
            self.steps = steps

        def __len__(self):
            return self.steps

        def __getitem__(self, index):
            images, labels = self.batches[index % len(self.batches)]
            return (images, labels), labels

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # wait for the step to finish
            self.times.append(time.perf_counter() - self._start)

    model = benchmark_model(backbone_name, args.image_size, args.num_classes, MODES[mode][1], args.precision)
    timer = StepTimer()
    history = model.fit(RandomFaces(args.warmup + args.steps), epochs=1, verbose=0, callbacks=[timer])
    median = float(np.median(timer.times[args.warmup:]))
    return {"backbone": backbone_name, "mode": mode, "backend": keras.backend.backend(),
            "precision": args.precision, "devices": _devices(), "image_size": args.image_size,
            "batch_size": args.batch_size, "num_classes": args.num_classes, "steps": args.steps,
            "median_step_s": median, "samples_per_s": args.batch_size / median,
            "final_loss": float(history.history["loss"][-1]), **_peak_memory()}


def _devices():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]


def _peak_memory():
    import resource

    import keras

    peak = {"peak_host_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB
    if keras.backend.backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            peak["peak_device_mib"] = stats["peak_bytes_in_use"] / 2**20
    else:
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            peak["peak_device_mib"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return peak


def _row_in_a_process(backbone, mode, args, argv):
    env = {**os.environ, "KERAS_BACKEND": MODES[mode][0], "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--row", backbone, mode],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{backbone} in {mode} mode failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_workload_arguments(parser, steps):
    """The training workload every speed script times (issue 20's: batch 64, 112x112, 10,000 classes)."""
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--num-classes", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="32x32, batch 4, 10 classes, 2 timed steps: a check")


def tiny_if_asked(args):
    if args.tiny:
        args.image_size, args.batch_size, args.steps, args.warmup, args.num_classes = 32, 4, 2, 1, 10
    return args


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["mobilefacenet", "iresnet18"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_float16", "mixed_bfloat16"])
    add_workload_arguments(parser, steps=10)
    parser.add_argument("--json", help="append one JSON line per row to this file")
    parser.add_argument("--row", nargs=2, metavar=("BACKBONE", "MODE"), help=argparse.SUPPRESS)
    args = tiny_if_asked(parser.parse_args(argv))
    if args.row:
        print(json.dumps(measure(*args.row, args)))
        return
    print(f"{'backbone':<14} {'mode':<6} {'samples/s':>10} {'step ms':>9} {'peak host MiB':>14}  devices", flush=True)
    for backbone in args.backbones:
        for mode in args.modes:
            result = _row_in_a_process(backbone, mode, args, argv)
            device_peak = f" (device {result['peak_device_mib']:.0f} MiB)" if "peak_device_mib" in result else ""
            print(f"{backbone:<14} {mode:<6} {result['samples_per_s']:>10.1f} {result['median_step_s'] * 1000:>9.1f} "
                  f"{result['peak_host_mib']:>14.0f}  {result['devices']}{device_peak}", flush=True)
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
