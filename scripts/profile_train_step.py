"""Where a training step's time goes: the TensorFlow profiler over a few graph-mode (or XLA) steps of a
backbone with ArcFace, summed by op type and by the kind of layer that owns the op.

    python scripts/profile_train_step.py --backbone mobilefacenet            # batch 64, 10,000 classes
    python scripts/profile_train_step.py --backbone iresnet18 --jit-compile

Prints the op time (self time, summed over threads) per op type (Conv2DBackpropFilter,
FusedBatchNormGradV3, ...) and per class of the layer that owns the op (DepthwiseConv2D, Conv2D,
BatchNormalization, PReLU, ZeroPadding2D, the head; the optimizer), with the step time;
``--json`` writes both tables.  Random images, as ``scripts/train_speed.py``.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_speed import benchmark_model  # noqa: E402  (the model train_speed.py times; sets the oneDNN default)

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def layer_kinds(model):
    """Layer name -> its class name, for every layer of the training model and its backbone."""
    kinds = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        kinds[layer.name] = type(layer).__name__
    return kinds


def layer_kind(op_name, kinds):
    """The class of the innermost layer named in the op's scope (Keras adds ``_1`` to scopes it
    re-enters); "optimizer" and "other" (loss, metrics, casts, the step's bookkeeping) else."""
    for part in reversed(op_name.split("/")):
        for candidate in (part, re.sub(r"_\d+$", "", part)):
            if candidate in kinds:
                return kinds[candidate]
    return "optimizer" if re.search(r"SGD|sgd|momentum", op_name) else "other"


def profile(args):
    model = benchmark_model(args.backbone, args.image_size, args.num_classes, args.jit_compile)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch_size, args.image_size, args.image_size, 3)).astype("float32")
    labels = rng.integers(0, args.num_classes, args.batch_size).astype("int32")
    model.train_on_batch((images, labels), labels)  # trace and compile
    model.train_on_batch((images, labels), labels)
    logdir = tempfile.mkdtemp(prefix="profile_")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch((images, labels), labels)
    step_s = (time.perf_counter() - start) / args.steps
    tf.profiler.experimental.stop()
    return step_s, _op_times(logdir), layer_kinds(model)


def _op_times(logdir):
    """(op name, op type, self time in us) of every op the profiler saw (its framework op stats)."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    xspace = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    data, _ = _pywrap_profiler_plugin.xspace_to_tools_data(xspace, "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    rows = [dict(zip(columns, (cell.get("v") for cell in row["c"]))) for row in table["rows"]]
    return [(row["operation"], row["type"], float(row["total_self_time"])) for row in rows if row["type"] != "IDLE"]


def tables(ops, kinds):
    by_type, by_kind = collections.Counter(), collections.Counter()
    for name, op_type, self_us in ops:
        by_type[op_type] += self_us
        by_kind[layer_kind(name, kinds)] += self_us
    return by_type, by_kind


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="mobilefacenet")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--num-classes", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    step_s, ops, kinds = profile(args)
    by_type, by_kind = tables(ops, kinds)
    total = sum(by_type.values()) or 1.0
    print(f"{args.backbone}, batch {args.batch_size}, {'XLA' if args.jit_compile else 'graph'}: "
          f"{step_s * 1000:.0f} ms a step under the profiler; op time summed over threads "
          f"{total / 1000 / args.steps:.0f} ms a step")
    for title, table in (("op type", by_type), ("layer kind", by_kind)):
        print(f"\n{title:<34} {'ms/step':>8} {'share':>6}")
        for key, dur in table.most_common(args.top):
            print(f"{key[:34]:<34} {dur / 1000 / args.steps:>8.1f} {dur / total:>6.1%}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"backbone": args.backbone, "step_s": step_s, "jit_compile": args.jit_compile,
                       "op_type_ms": {k: v / 1000 / args.steps for k, v in by_type.items()},
                       "layer_kind_ms": {k: v / 1000 / args.steps for k, v in by_kind.items()}}, handle, indent=1)


if __name__ == "__main__":
    main()
