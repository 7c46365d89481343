"""Measure what the zoo's default rule (docs/zoo.md, ``keras_arcface.zoo.default_by_rule``) reads from
each card, write it into the cards, and print the rule's choice.

    python scripts/make_holdout_benchmark.py        # benchmarks/celeba-holdout/images (links into ../shared)
    python scripts/card_rule_metrics.py             # every card that allows commercial use
    python scripts/card_rule_metrics.py sface face-reidentification-retail-0095 --files all

For each card: its runtime file's (``--files all``: every .tflite / .onnx file's) 10-fold accuracy on
the CelebA hold-out benchmark (6,000 pairs of identities that share no one with LFW and that no zoo
training run saw), and the runtime file's median and 90th-percentile milliseconds per face at batch 1
with 1 and 2 threads (``scripts/bench_latency.py``'s timer, one process per figure, the cards'
files timed in turn ``--rounds`` times and the fastest round kept: latencies from one run compare
on these shared machines, latencies from two runs do not).  All named cards are timed in one run.
"""

import argparse
import json
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_arcface.zoo.cards import HOLDOUT_BENCHMARK, default_by_rule, read_cards  # noqa: E402

HOLDOUT = ROOT / "benchmarks" / "celeba-holdout"


def holdout_metric(path, fmt):
    """The card metric of the file at ``path`` on the CelebA hold-out benchmark."""
    from keras_arcface.embedding import load_embedder
    from keras_arcface.evaluation import evaluate_pairs

    report = evaluate_pairs(load_embedder(str(path)), HOLDOUT / "pairs.txt", HOLDOUT / "images")
    return {"benchmark": HOLDOUT_BENCHMARK,
            "protocol": "benchmarks/celeba-holdout/pairs.txt (scripts/make_holdout_benchmark.py): 6000 pairs of "
                        "CelebA identities outside LFW and outside every zoo training run, 10-fold, the shared "
                        "aligned crops, no flip test",
            "artifact": fmt, "accuracy_mean": round(report["accuracy_mean"], 5),
            "accuracy_std": round(report["accuracy_std"], 5),
            "tar_at_far_1e-2": None if report["tar_at_far"]["0.01"] is None else round(report["tar_at_far"]["0.01"], 5),
            "tar_at_far_1e-3": None if report["tar_at_far"]["0.001"] is None else round(report["tar_at_far"]["0.001"],
                                                                                          5),
            "auc": round(report["auc"], 5), "best_threshold": round(report["best_threshold"], 4),
            "parity_min_cosine": None}


def time_file(path, threads, faces):
    """(median, p90) ms per face of one file, timed in a fresh process by bench_latency.py."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_latency.py"), "--faces", faces,
                           "--child", "file", str(path), str(threads)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"timing {path} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="cards to measure (default: every card allowing commercial use)")
    parser.add_argument("--cards", default=str(ROOT / "zoo"))
    parser.add_argument("--models", default=str(ROOT / "saved_models"), help="the folder of <name>/<file>")
    parser.add_argument("--faces", default="../shared/data/lfw/aligned", help="faces to time on")
    parser.add_argument("--files", choices=["runtime", "all"], default="runtime",
                        help="hold-out accuracy for the runtime file only, or for every runtime-readable file")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if not (HOLDOUT / "images").is_dir():
        raise SystemExit(f"{HOLDOUT / 'images'} is missing: run python scripts/make_holdout_benchmark.py")
    cards = read_cards(args.cards)
    names = args.names or sorted(name for name, card in cards.items() if card.commercial_use)
    data = {name: json.loads((pathlib.Path(args.cards) / f"{name}.json").read_text()) for name in names}
    runtime = {name: cards[name].runtime_format() for name in names}
    for name in names:
        card = cards[name]
        formats = [runtime[name]] if args.files == "runtime" else [fmt for fmt in card.artifacts if fmt != "keras"]
        for fmt in formats:
            metric = holdout_metric(pathlib.Path(args.models) / name / card.artifacts[fmt].file, fmt)
            data[name]["metrics"] = [m for m in data[name]["metrics"]
                                     if not (m["benchmark"] == HOLDOUT_BENCHMARK and m["artifact"] == fmt)] + [metric]
            print(f"{name} {fmt}: {HOLDOUT_BENCHMARK} {100 * metric['accuracy_mean']:.2f} % "
                  f"± {100 * metric['accuracy_std']:.2f}", flush=True)
    timings = {name: {} for name in names}
    for _ in range(args.rounds):
        for threads in (1, 2):
            for name in names:
                path = pathlib.Path(args.models) / name / cards[name].artifacts[runtime[name]].file
                median, p90 = time_file(path, threads, args.faces)
                best = timings[name].get(str(threads))
                if best is None or median < best["median_ms"]:
                    timings[name][str(threads)] = {"median_ms": round(median, 3), "p90_ms": round(p90, 3)}
    for name in names:
        data[name]["latency"] = {
            "protocol": "ms per face at batch 1 (scripts/card_rule_metrics.py: bench_latency.py's timer, median and "
                        f"p90 of 200 calls after 20, one process per figure, the fastest of {args.rounds} rounds; "
                        f"timed in one run with {', '.join(names)})",
            "hardware": f"{platform.machine()} CPU, {platform.system()} (the 2-core development machine)",
            "files": {runtime[name]: timings[name]}}
        (pathlib.Path(args.cards) / f"{name}.json").write_text(json.dumps(data[name], indent=1) + "\n")
        print(f"{name} {runtime[name]}: {timings[name]}", flush=True)
    print("default by the rule of docs/zoo.md:", default_by_rule(read_cards(args.cards)))


if __name__ == "__main__":
    main()
