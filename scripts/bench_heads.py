"""Benchmark one margin-head training step against its matrix-product floor and pytorch-metric-learning.

A step is: forward of the head and the softmax cross-entropy, backward to the embeddings and the
class centres, and an SGD update of the centres (B = 256, d = 512 by default).  Each configuration
runs in its own process, so its peak memory (ru_maxrss, framework included) is its own.

    python scripts/bench_heads.py                 # C = 10k, 100k (every head) and 1M (Partial FC r = 0.1)
    python scripts/bench_heads.py --classes 100000 --runners floor-tf keras-arcface-graph pml-arcface

Runners:
  floor-tf, floor-jax, floor-torch
                               the three B x d x C products of a step alone (logits, gradient of the
                               embeddings, gradient of the centres): TensorFlow graph, jax.jit, torch
  keras-<head>-graph           our head in tf.function: what Keras' default compile runs on a CPU
  keras-<head>-sequential      the same with the loss form: head(embeddings) then head.margin_loss()
                               (the README's Sequential model), tf.function
  keras-<head>-xla             tf.function(jit_compile=True)
  keras-<head>-jax             the JAX backend, jax.jit with donated state (JAX always uses XLA)
  pml-<head>                   pytorch-metric-learning's ArcFaceLoss / CosFaceLoss + torch.optim.SGD
<head> is arcface, cosface, combined (m1 = 1, m2 = 0.3, m3 = 0.2) or partial_fc (ArcFace margin,
sample rate 0.1).  The table's "x floor" divides by floor-tf at the same C.  Needs tensorflow; the
jax runners need jax, the torch runners `pip install torch pytorch-metric-learning`.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SMALL_RUNNERS = (["floor-tf", "floor-jax", "floor-torch", "keras-arcface-sequential"]
                 + [f"keras-{head}-{mode}" for head in ("arcface", "cosface", "combined")
                    for mode in ("graph", "xla", "jax")]
                 + ["pml-arcface", "pml-cosface"])
MILLION_RUNNERS = ["floor-tf", "keras-partial_fc-graph", "keras-partial_fc-xla", "keras-partial_fc-jax",
                   "pml-arcface"]
PARTIAL_FC_SAMPLE_RATE = 0.1


def default_runners(classes):
    return MILLION_RUNNERS if classes >= 1_000_000 else SMALL_RUNNERS


def _time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def _make_head(head_name, classes):
    from keras_arcface.heads import get_head

    if head_name == "partial_fc":
        return get_head("partial_fc", classes, sample_rate=PARTIAL_FC_SAMPLE_RATE, seed=0)
    return get_head(head_name, classes)


def _inputs(batch, dim, classes, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, dim)).astype("float32"), rng.integers(0, classes, batch).astype("int32")


def _head_and_optimizer(head_name, dim, classes):
    """The built head and an SGD optimizer built on its variables."""
    import keras

    head = _make_head(head_name, classes)
    head.build((None, dim))
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    optimizer.build(head.trainable_variables)
    return head, optimizer


def _keras_tf_step(head_name, jit, batch, dim, classes, seed, loss_form=False):
    import keras
    import tensorflow as tf
    from keras import ops

    head, optimizer = _head_and_optimizer(head_name, dim, classes)
    x, y = (tf.constant(a) for a in _inputs(batch, dim, classes, seed))
    margin_loss = head.margin_loss() if loss_form else None

    @tf.function(jit_compile=jit)
    def step(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            if loss_form:
                loss = margin_loss(y, head(x, training=True))
            else:
                logits = head([x, y], training=True)
                loss = ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        grads = tape.gradient(loss, [x] + head.trainable_variables)
        optimizer.apply(grads[1:], head.trainable_variables)
        return loss, grads[0]

    return lambda: step(x, y)[1].numpy()


def _keras_jax_step(head_name, batch, dim, classes, seed):
    import jax
    import keras
    from keras import ops

    head, optimizer = _head_and_optimizer(head_name, dim, classes)
    x, y = (jax.numpy.asarray(a) for a in _inputs(batch, dim, classes, seed))

    def loss_fn(trainable, x, non_trainable, y):
        logits, non_trainable = head.stateless_call(trainable, non_trainable, [x, y], training=True)
        return ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)), non_trainable

    gradients = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)

    def step(trainable, non_trainable, optimizer_state, x, y):
        (loss, non_trainable), (trainable_grads, x_grad) = gradients(trainable, x, non_trainable, y)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, trainable_grads, trainable)
        return trainable, non_trainable, optimizer_state, x_grad

    compiled = jax.jit(step, donate_argnums=(0, 1, 2))
    state = [[v.value for v in head.trainable_variables], [v.value for v in head.non_trainable_variables],
             [v.value for v in optimizer.variables]]

    def run():
        *state[:], x_grad = compiled(*state, x, y)
        x_grad.block_until_ready()

    return run


def _tf_floor(batch, dim, classes, seed):
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


def _jax_floor(batch, dim, classes, seed):
    import jax

    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(keys[0], (batch, dim))
    w = jax.random.normal(keys[1], (dim, classes))
    g = jax.random.normal(keys[2], (batch, classes))
    step = jax.jit(lambda x, w, g: (x @ w, g @ w.T, x.T @ g))
    return lambda: jax.block_until_ready(step(x, w, g))


def _torch_floor(batch, dim, classes, seed):
    import torch

    torch.manual_seed(seed)
    x, w, g = torch.randn(batch, dim), torch.randn(dim, classes), torch.randn(batch, classes)
    return lambda: (x @ w, g @ w.T, x.T @ g)


def _pml_step(head_name, batch, dim, classes, seed):
    import torch
    from pytorch_metric_learning import losses

    torch.manual_seed(seed)
    if head_name == "arcface":
        loss_fn = losses.ArcFaceLoss(num_classes=classes, embedding_size=dim, margin=28.6, scale=64)
    elif head_name == "cosface":
        loss_fn = losses.CosFaceLoss(num_classes=classes, embedding_size=dim, margin=0.35, scale=64)
    else:
        raise ValueError(f"pytorch-metric-learning has no {head_name} loss")
    optimizer = torch.optim.SGD(loss_fn.parameters(), lr=0.1)
    x = torch.randn(batch, dim, requires_grad=True)
    y = torch.randint(0, classes, (batch,))

    def run():
        optimizer.zero_grad()
        x.grad = None
        loss_fn(x, y).backward()
        optimizer.step()

    return run


def make_step(runner, batch, dim, classes, seed):
    kind, _, rest = runner.partition("-")
    if runner == "floor-tf":
        return _tf_floor(batch, dim, classes, seed)
    if runner == "floor-jax":
        return _jax_floor(batch, dim, classes, seed)
    if runner == "floor-torch":
        return _torch_floor(batch, dim, classes, seed)
    if kind == "pml":
        return _pml_step(rest, batch, dim, classes, seed)
    if kind == "keras" and "-" in rest:
        head_name, mode = rest.rsplit("-", 1)
        if mode == "jax":
            return _keras_jax_step(head_name, batch, dim, classes, seed)
        if mode in ("graph", "xla", "sequential"):
            return _keras_tf_step(head_name, mode == "xla", batch, dim, classes, seed, loss_form=mode == "sequential")
    raise ValueError(f"unknown runner {runner!r} (see --help)")


def run_one(runner, batch, dim, classes, steps, warmup, seed):
    times = _time_steps(make_step(runner, batch, dim, classes, seed), steps, warmup)
    return {"runner": runner, "classes": classes, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_environment(runner):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if runner.endswith("-jax") or runner == "floor-jax":
        env.update(KERAS_BACKEND="jax", JAX_PLATFORMS=env.get("JAX_PLATFORMS", "cpu"))
    else:
        env["KERAS_BACKEND"] = "tensorflow"
    return env


def table(rows):
    """The Markdown table, each step also as a multiple of floor-tf at the same C."""
    floors = {r["classes"]: r["median_s"] for r in rows if r["runner"] == "floor-tf"}
    lines = ["| runner | classes | step median (ms) | min-max (ms) | x floor | peak RSS (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['median_s'] / floors[r['classes']]:.2f}" if r["classes"] in floors else "-"
        lines.append(f"| {r['runner']} | {r['classes']:,} | {r['median_s'] * 1000:.0f} | "
                     f"{r['min_s'] * 1000:.0f}-{r['max_s'] * 1000:.0f} | {ratio} | {r['peak_rss_mib']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--runners", nargs="+", help="default: every head at C < 1M, Partial FC at 1M")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (a third of them at C >= 1M)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        runner, classes = args.child.split(":")
        print(json.dumps(run_one(runner, args.batch, args.dim, int(classes), args.steps, args.warmup, args.seed)))
        return 0
    rows, failed = [], []
    for classes in args.classes:
        steps = max(3, args.steps // 3) if classes >= 1_000_000 else args.steps
        for runner in args.runners or default_runners(classes):
            cmd = [sys.executable, __file__, "--child", f"{runner}:{classes}", "--batch", str(args.batch),
                   "--dim", str(args.dim), "--steps", str(steps), "--warmup", str(min(args.warmup, steps)),
                   "--seed", str(args.seed)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=child_environment(runner))
            if done.returncode != 0:
                failed.append(f"{runner}:{classes}")
                print(f"{runner} C={classes:,}: failed\n{done.stderr[-2000:]}", file=sys.stderr, flush=True)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{runner:<24} C={classes:>9,}  median {r['median_s'] * 1000:8.1f} ms  "
                  f"(min {r['min_s'] * 1000:.1f}, max {r['max_s'] * 1000:.1f})  peak RSS {r['peak_rss_mib']:.0f} MiB",
                  flush=True)
    print()
    print(table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
