"""Step time and peak memory of the full ArcFace head vs Partial FC against the number of classes.

    python scripts/bench_partial_fc.py --classes 10000 100000 1000000 2000000 --rate 0.1

One fresh process per row (so peak memory is that row's): a training step of the head alone
(embeddings in, B x d, SGD with momentum, sparse cross-entropy), TensorFlow graph mode,
``--steps`` timed steps after 2 warm-up steps.  Peak memory is the process' maximum resident
set size (ru_maxrss), which includes TensorFlow itself (the first row shows that floor).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def child(head_kind, classes, batch, dim, rate, steps):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_arcface.heads import ArcFaceLayer, PartialFCLayer  # first: it sets the oneDNN default

    # isort: split
    import keras
    import numpy as np

    embeddings = keras.Input((dim,))
    labels = keras.Input((), dtype="int32")
    if head_kind == "full":
        head = ArcFaceLayer(classes, scale=64.0, margin=0.5)
    else:
        head = PartialFCLayer(classes, rate, "arcface", {"scale": 64.0, "margin": 0.5}, seed=0)
    model = keras.Model([embeddings, labels], head([embeddings, labels]))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, dim)).astype("float32")
    y = rng.integers(0, classes, batch).astype("int32")
    for _ in range(2):
        model.train_on_batch([x, y], y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch([x, y], y)
    seconds = (time.perf_counter() - start) / steps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"head": head_kind, "classes": classes, "ms": seconds * 1000, "peak_gib": peak,
                      "loss": float(loss)}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("HEAD", "CLASSES"))
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]), args.batch, args.dim, args.rate, args.steps)
        return 0
    print(f"B={args.batch}, d={args.dim}, Partial FC r={args.rate}, {args.steps} steps after 2 warm-up\n")
    print("| classes | full head ms/step | full head peak GiB | Partial FC ms/step | Partial FC peak GiB | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for classes in args.classes:
        cells = {}
        for kind in ("full", "partial_fc"):
            cmd = [sys.executable, __file__, "--child", kind, str(classes), "--batch", str(args.batch),
                   "--dim", str(args.dim), "--rate", str(args.rate), "--steps", str(args.steps)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                reason = "killed (out of memory?)" if done.returncode < 0 else done.stderr.strip().splitlines()[-1]
                cells[kind] = None
                print(f"<!-- {kind} C={classes}: {reason} -->", file=sys.stderr)
            else:
                cells[kind] = json.loads(done.stdout.strip().splitlines()[-1])
        full, pfc = cells["full"], cells["partial_fc"]

        def fmt(row, key, spec):
            return "failed" if row is None else format(row[key], spec)

        ratio = f"{full['ms'] / pfc['ms']:.1f}x" if full and pfc else "-"
        print(f"| {classes:,} | {fmt(full, 'ms', '.0f')} | {fmt(full, 'peak_gib', '.2f')} | "
              f"{fmt(pfc, 'ms', '.0f')} | {fmt(pfc, 'peak_gib', '.2f')} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
