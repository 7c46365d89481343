"""Forward + backward time of the backbones' layers against Keras' own: the 3x3 convolution (Keras'
or ours, whose kernel gradient is computed channels first on oneDNN), the depthwise convolution
(native kernel or shifted sum), a strided one of each behind a ZeroPadding2D layer or padded inside,
BatchNorm (Keras' or the fused kernel) and PReLU (Keras' or one select), in TensorFlow graph mode,
TensorFlow XLA and JAX: one process per mode.

    python scripts/bench_backbone_layers.py                         # (64, 56, 56, 128), 3x3
    python scripts/bench_backbone_layers.py --shape 64 28 28 128 --stride 2

Each row: median milliseconds of ``--repeats`` calls of a compiled function returning the layer's
gradients with respect to its input and weights for a fixed upstream gradient (no loss work).
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import time

from train_speed import MODES, ROOT  # the same modes as the training benchmark


def _variants(args):
    import keras

    sys.path.insert(0, ROOT)
    from keras_arcface.backbones.conv import Conv2D
    from keras_arcface.backbones.depthwise import DepthwiseConv2D
    from keras_arcface.backbones.fused_batch_norm import BatchNormalization
    from keras_arcface.backbones.prelu import PReLU

    def depthwise(implementation):
        return lambda: DepthwiseConv2D(3, strides=args.stride, padding="same", use_bias=False,
                                       implementation=implementation)

    def strided(make, padded_inside):
        """A 3x3/2 convolution with PyTorch's symmetric padding, as the backbones' strided ones: padded
        inside the layer, or behind a ZeroPadding2D layer (as the backbones were built before)."""
        if padded_inside:
            return lambda: make(strides=2, padding="valid", use_bias=False, symmetric_padding=1)
        return lambda: keras.Sequential([keras.layers.ZeroPadding2D(1),
                                         make(strides=2, padding="valid", use_bias=False)])

    filters = args.shape[-1]
    conv, depthwise_conv = functools.partial(Conv2D, filters, 3), functools.partial(DepthwiseConv2D, 3)
    return {
        "Conv2D 3x3 keras": (lambda: keras.layers.Conv2D(filters, 3, padding="same", use_bias=False), None),
        "Conv2D 3x3 channels-first dW": (lambda: conv(padding="same", use_bias=False), True),
        "Conv2D 3x3/2 pad layer": (strided(conv, False), True),
        "Conv2D 3x3/2 pad inside": (strided(conv, True), True),
        "DepthwiseConv2D native": (depthwise("native"), None),
        "DepthwiseConv2D shifted sum": (depthwise("shifted_sum"), None),
        "DepthwiseConv2D /2 pad layer": (strided(depthwise_conv, False), True),
        "DepthwiseConv2D /2 pad inside": (strided(depthwise_conv, True), True),
        "BatchNormalization keras": (lambda: keras.layers.BatchNormalization(epsilon=1e-5), True),
        "BatchNormalization fused": (lambda: BatchNormalization(epsilon=1e-5), True),
        "PReLU keras": (lambda: keras.layers.PReLU(shared_axes=[1, 2]), None),
        "PReLU select": (lambda: PReLU(shared_axes=[1, 2]), True),
    }


def measure(mode, args):
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=args.shape).astype("float32")
    rows = []
    for name, (make, training) in _variants(args).items():
        layer = make()
        layer.build(x.shape)
        upstream = rng.normal(size=layer.compute_output_shape(x.shape)).astype("float32")
        kwargs = {} if training is None else {"training": training}
        trainable = [np.asarray(v) for v in layer.trainable_variables]
        frozen = [np.asarray(v) for v in layer.non_trainable_variables]

        def product(inputs, *weights):
            outputs = layer.stateless_call(list(weights), frozen, inputs, **kwargs)[0]
            return keras.ops.sum(outputs * upstream)  # its gradient is the upstream gradient times d out

        grads = _compiled_gradients(product, MODES[mode][1])
        _block(grads(x, *trainable))
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            _block(grads(x, *trainable))
            times.append(time.perf_counter() - start)
        rows.append({"layer": name, "mode": mode, "shape": args.shape, "stride": args.stride,
                     "median_ms": float(np.median(times)) * 1000})
    return rows


def _compiled_gradients(fn, jit_compile):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(lambda inputs, *weights: jax.grad(lambda args: fn(*args))([inputs, *weights]))
    import tensorflow as tf

    def grads(inputs, *weights):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            value = fn(inputs, *weights)
        return tape.gradient(value, [inputs, *weights])

    return tf.function(grads, jit_compile=jit_compile)


def _block(values):
    import numpy as np

    for value in values if isinstance(values, (list, tuple)) else [values]:
        np.asarray(value).ravel()[:1]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[64, 56, 56, 128])
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(measure(args.mode, args)))
        return
    print(f"{'layer':<30} {'mode':<6} {'fwd+bwd ms':>10}", flush=True)
    for mode in args.modes:
        env = {**os.environ, "KERAS_BACKEND": MODES[mode][0], "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--mode", mode],
                              capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(f"{mode} failed:\n{done.stderr[-4000:]}")
        for row in json.loads(done.stdout.strip().splitlines()[-1]):
            print(f"{row['layer']:<30} {mode:<6} {row['median_ms']:>10.1f}", flush=True)
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
