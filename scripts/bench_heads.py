"""Benchmark one margin-head training step on this CPU, next to pytorch-metric-learning.

A step is: forward of the head and the softmax cross-entropy, backward to the embeddings
and the class centres, and an SGD update of the centres (B=256, d=512 by default).  Each
configuration runs in its own process, so the peak memory (ru_maxrss) is its own.

    python scripts/bench_heads.py                      # C = 10k and 100k, every runner
    python scripts/bench_heads.py --classes 100000 --runners keras-arcface-graph torch-pml-arcface

Runners: keras-<head>-graph (tf.function), keras-<head>-xla (tf.function(jit_compile=True)),
torch-pml-<head> (pytorch-metric-learning's ArcFaceLoss/CosFaceLoss + torch.optim.SGD),
matmul-floor-* (just the three B x d x C matmuls of forward and backward, in TF and torch).
Needs tensorflow; the torch runners need `pip install torch pytorch-metric-learning`.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

RUNNERS = ["keras-arcface-graph", "keras-arcface-xla", "keras-cosface-graph", "keras-cosface-xla",
           "torch-pml-arcface", "torch-pml-cosface", "matmul-floor-tf", "matmul-floor-torch"]


def _time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _keras_step(head_name, jit, batch, dim, classes, seed):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from keras_arcface.heads import get_head

    rng = np.random.default_rng(seed)
    head = get_head(head_name, classes)
    head.build((None, dim))
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    optimizer.build(head.trainable_variables)
    x = tf.constant(rng.standard_normal((batch, dim)).astype("float32"))
    y = tf.constant(rng.integers(0, classes, batch).astype("int32"))

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = head([x, y], training=True)
            loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        grads = tape.gradient(loss, [x] + head.trainable_variables)
        optimizer.apply(grads[1:], head.trainable_variables)
        return loss, grads[0]

    def run():
        loss, grad_x = step(x, y)
        grad_x.numpy()

    return run


def _tf_matmul_floor(batch, dim, classes, seed):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((batch, dim)).astype("float32"))
    w = tf.constant(rng.standard_normal((dim, classes)).astype("float32"))
    g = tf.constant(rng.standard_normal((batch, classes)).astype("float32"))

    @tf.function
    def step():
        return tf.matmul(x, w), tf.matmul(g, w, transpose_b=True), tf.matmul(x, g, transpose_a=True)

    return lambda: [t.numpy() for t in step()]


def _torch_step(head_name, batch, dim, classes, seed):
    import torch
    from pytorch_metric_learning import losses

    torch.manual_seed(seed)
    if head_name == "arcface":
        loss_fn = losses.ArcFaceLoss(num_classes=classes, embedding_size=dim, margin=28.6, scale=64)
    else:
        loss_fn = losses.CosFaceLoss(num_classes=classes, embedding_size=dim, margin=0.35, scale=64)
    optimizer = torch.optim.SGD(loss_fn.parameters(), lr=0.1)
    x = torch.randn(batch, dim, requires_grad=True)
    y = torch.randint(0, classes, (batch,))

    def run():
        optimizer.zero_grad()
        x.grad = None
        loss = loss_fn(x, y)
        loss.backward()
        optimizer.step()

    return run


def _torch_matmul_floor(batch, dim, classes, seed):
    import torch

    torch.manual_seed(seed)
    x, w, g = torch.randn(batch, dim), torch.randn(dim, classes), torch.randn(batch, classes)
    return lambda: (x @ w, g @ w.T, x.T @ g)


def run_one(runner, batch, dim, classes, steps, warmup, seed):
    if runner.startswith("keras-"):
        _, head_name, mode = runner.split("-")
        step = _keras_step(head_name, mode == "xla", batch, dim, classes, seed)
    elif runner.startswith("torch-pml-"):
        step = _torch_step(runner.rsplit("-", 1)[1], batch, dim, classes, seed)
    elif runner == "matmul-floor-tf":
        step = _tf_matmul_floor(batch, dim, classes, seed)
    elif runner == "matmul-floor-torch":
        step = _torch_matmul_floor(batch, dim, classes, seed)
    else:
        raise ValueError(runner)
    times = _time_steps(step, steps, warmup)
    return {"runner": runner, "classes": classes, "median_s": statistics.median(times),
            "min_s": min(times), "max_s": max(times),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runners", nargs="+", default=RUNNERS)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        runner, classes = args.child.split(":")
        print(json.dumps(run_one(runner, args.batch, args.dim, int(classes), args.steps, args.warmup,
                                 args.seed)))
        return
    rows = []
    for classes in args.classes:
        for runner in args.runners:
            cmd = [sys.executable, __file__, "--child", f"{runner}:{classes}", "--batch", str(args.batch),
                   "--dim", str(args.dim), "--steps", str(args.steps), "--warmup", str(args.warmup)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{runner} C={classes}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{r['runner']:<22} C={classes:>7}  median {r['median_s']*1000:8.1f} ms  "
                  f"(min {r['min_s']*1000:.1f}, max {r['max_s']*1000:.1f})  peak RSS {r['peak_rss_mib']:.0f} MiB",
                  flush=True)
    print("\n| runner | classes | step median (ms) | min-max (ms) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['runner']} | {r['classes']:,} | {r['median_s']*1000:.0f} | "
              f"{r['min_s']*1000:.0f}-{r['max_s']*1000:.0f} | {r['peak_rss_mib']:.0f} |")


if __name__ == "__main__":
    main()
