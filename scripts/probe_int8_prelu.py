"""Why full-int8 TFLite is slower than float32 here: which ops XNNPACK leaves to LiteRT's own kernels.

    python scripts/probe_int8_prelu.py [FILE.tflite ...]

For each file given: the ops and the number of XNNPACK delegate partitions (one partition means
XNNPACK runs the whole graph; every op it refuses splits it).  Then a micro-model, six 3x3
convolutions on a 56x56x32 map each followed by an activation, converted to float32 and full int8,
timed on one thread: ReLU, PReLU, and PReLU written as max(x, a x) (valid for slopes in [0, 1]).
"""

import argparse
import collections
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def describe(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    ops = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
    partitions = ops.pop("DELEGATE", 0)
    return partitions, dict(ops)


def micro_model(activation, channels=32):
    import keras
    import numpy as np

    x = inputs = keras.Input((56, 56, channels))
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = keras.layers.Conv2D(channels, 3, padding="same")(x)
        if activation == "relu":
            x = keras.layers.ReLU()(x)
        elif activation == "prelu":
            x = keras.layers.PReLU(shared_axes=[1, 2])(x)
        else:  # max(x, a x): the slope as a 1x1 depthwise convolution
            slope = rng.uniform(0.1, 0.3, (1, 1, channels, 1)).astype("float32")
            scaled = keras.layers.DepthwiseConv2D(1, use_bias=False,
                                                  depthwise_initializer=keras.initializers.Constant(slope))(x)
            x = keras.layers.Maximum()([x, scaled])
    return keras.Model(inputs, x)


def time_file(path, sample, repeats=50):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    interpreter.set_tensor(index, sample)
    interpreter.invoke()
    start = time.perf_counter()
    for _ in range(repeats):
        interpreter.invoke()
    return (time.perf_counter() - start) / repeats * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args(argv)
    for path in args.files:
        partitions, ops = describe(path)
        print(f"{path}: {partitions} XNNPACK partition(s); ops {ops}")
    import numpy as np

    from keras_arcface.export.formats import write_tflite

    sample = np.random.default_rng(0).normal(size=(16, 56, 56, 32)).astype("float32")
    work = pathlib.Path(tempfile.mkdtemp())
    print("| activation | float32 ms | int8 ms | int8 XNNPACK partitions |")
    print("|---|---:|---:|---:|")
    for activation in ("relu", "prelu", "max"):
        model = micro_model(activation)
        cells = []
        for quantization in ("float32", "int8"):
            path = write_tflite(model, work / f"{activation}_{quantization}.tflite", quantization,
                                representative_images=sample)
            cells.append(time_file(path, sample[:1]))
        print(f"| {activation} | {cells[0]:.2f} | {cells[1]:.2f} | {describe(path)[0]} |", flush=True)


if __name__ == "__main__":
    main()
