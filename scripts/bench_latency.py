"""Per-face latency of MobileFaceNet in every export format, next to the reference models.

    python scripts/bench_latency.py --faces ../shared/data/lfw/aligned \\
        --reference ../shared/models/MobileFaceNet.tflite \\
                    ../shared/models/face_recognition_sface_2021dec_fp32_ort.onnx
    python scripts/bench_latency.py --faces ../shared/data/lfw/aligned --skip-export \\
        --reference saved_models/sface/*.tflite saved_models/sface/*.onnx \\
                    ../shared/models/face_recognition_sface_2021dec_fp32_ort.onnx

``--skip-export`` times only the files given (e.g. a zoo model's artifacts beside the original); a
file whose model takes another crop than ArcFace's 112x112 gets the faces mapped onto it, an
OpenVINO IR (.xml, its .bin counted in the size) runs in OpenVINO.

Exports a MobileFaceNet (``--model``: a training directory; default a freshly initialised one,
latency does not depend on the weights) to every format, then times one face at a time
(batch 1; batch 2 for fixed-batch files, per face = per call / 2) with 1 and 2 threads, each
runner in its own process; prints median latency per face and file size.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _faces(folder, count=64):
    from keras_arcface.data import sample_faces

    return sample_faces(folder, count)


def time_runner(kind, path, threads, faces, repeats=200):
    import numpy as np

    if kind == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        import keras

        from keras_arcface.data import preprocess
        from keras_arcface.embedding import load_keras_model

        model = load_keras_model(path) if path != "fresh" else __import__(
            "keras_arcface.backbones", fromlist=["MobileFaceNet"]).MobileFaceNet()
        x = preprocess(faces[:1])
        call, per_call = (lambda: model(x, training=False).numpy()), 1
        del keras
    elif kind == "saved_model":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from keras_arcface.data import preprocess

        loaded = tf.saved_model.load(path)
        x = tf.constant(preprocess(faces[:1]))
        call, per_call = (lambda: loaded.serve(x).numpy()), 1
    else:
        from keras_arcface.alignment import recrop
        from keras_arcface.runtime import FaceEmbedder
        from keras_arcface.runtime.embedder import DEFAULT_SPEC

        embedder = FaceEmbedder(path, threads=threads)  # an OpenVINO .xml runs in OpenVINO (float32)
        batch = embedder.fixed_batch or 1
        crops = recrop(faces[:batch], DEFAULT_SPEC, embedder.spec)  # onto the model's own crop
        call, per_call = (lambda: embedder.raw(crops)), batch
    for _ in range(20):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) / per_call)
    return statistics.median(times) * 1000, float(np.percentile(times, 90)) * 1000


def _size(path):
    """Bytes of a model file, an OpenVINO IR's .bin included."""
    weights = os.path.splitext(path)[0] + ".bin"
    return os.path.getsize(path) + (os.path.getsize(weights) if path.endswith(".xml") and os.path.isfile(weights)
                                    else 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", required=True)
    parser.add_argument("--model", default="fresh")
    parser.add_argument("--reference", nargs="*", default=[])
    parser.add_argument("--skip-export", action="store_true", help="time only the --reference files")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    faces = _faces(args.faces)
    if args.child:
        kind, path, threads = args.child
        print(json.dumps(time_runner(kind, path, int(threads), faces)))
        return
    runners = []
    if not args.skip_export:
        from keras_arcface.backbones import MobileFaceNet
        from keras_arcface.export import export

        work = tempfile.mkdtemp()
        source = MobileFaceNet() if args.model == "fresh" else args.model
        results = export(source, ["saved_model", "tflite_float32", "tflite_float16", "tflite_int8", "onnx"],
                         work, faces, name="mobilefacenet")
        runners = [("keras", args.model, None)] + [
            ("saved_model" if fmt == "saved_model" else "file", r["path"], r["bytes"]) for fmt, r in results.items()]
    runners += [("file", path, _size(path)) for path in args.reference]
    print("| model | size (MB) | 1 thread: median / p90 ms per face | 2 threads: median / p90 ms per face |")
    print("|---|---:|---:|---:|")
    for kind, path, size in runners:
        cells = []
        for threads in (1, 2):
            done = subprocess.run([sys.executable, __file__, "--faces", args.faces, "--child", kind, str(path),
                                   str(threads)], capture_output=True, text=True)
            if done.returncode:
                cells.append("failed")
                continue
            median, p90 = json.loads(done.stdout.strip().splitlines()[-1])
            cells.append(f"{median:.2f} / {p90:.2f}")
        label = "Keras MobileFaceNet" if kind == "keras" else os.path.basename(str(path))
        print(f"| {label} | {'' if size is None else f'{size / 1e6:.2f}'} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
