"""Throughput of the full 6000-pair LFW evaluation (images embedded per second) per model path.

    python scripts/bench_eval.py --lfw ../shared/data/lfw \\
        --models keras:mobilefacenet ../shared/models/MobileFaceNet.tflite \\
                 ../shared/models/face_recognition_sface_2021dec_fp32_ort.onnx

``keras:<backbone>`` evaluates a freshly initialised Keras backbone (its accuracy is chance;
only the speed is measured); files go through the TensorFlow-free runtime.  One process per
model; accuracy, throughput and wall time are printed as a table.
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_one(model, lfw):
    from keras_arcface.embedding import load_embedder
    from keras_arcface.evaluation import evaluate_pairs

    if model.startswith("keras:"):
        from keras_arcface.backbones import get_backbone

        embedder = load_embedder(get_backbone(model.split(":", 1)[1]))
    else:
        embedder = load_embedder(model)
    report = evaluate_pairs(embedder, os.path.join(lfw, "pairs.txt"), os.path.join(lfw, "aligned"))
    return {"model": model, "accuracy": report["accuracy_mean"], "images": report["images"],
            "seconds": report["embed_seconds"], "images_per_second": report["images_per_second"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.lfw)))
        return
    print("| model | images | seconds | images/s | LFW accuracy |\n|---|---:|---:|---:|---:|")
    for model in args.models:
        done = subprocess.run([sys.executable, __file__, "--lfw", args.lfw, "--models", model, "--child", model],
                              capture_output=True, text=True)
        if done.returncode:
            print(f"| {model} | failed: {done.stderr.strip().splitlines()[-1]} |||")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {r['model']} | {r['images']} | {r['seconds']:.1f} | {r['images_per_second']:.1f} | "
              f"{r['accuracy'] * 100:.2f} % |", flush=True)


if __name__ == "__main__":
    main()
