"""Load on `keras-arcface serve`, on loopback only, bounded in time and requests: N concurrent clients mixing
verify / identify / enroll for a fixed duration against a service started here (a fresh gallery file), for each
number of workers and each batching setting asked for.  Reports throughput, p50 / p95 / p99 latency and errors,
and the service's mean batch (faces per model call).

Photos are generated from the bundled demo crops (each enlarged on a canvas, so the service detects and aligns
it; a little noise makes every enrolled photo new content).  Needs the serve extra and httpx:

    pip install 'keras-arcface[serve]' httpx
    python3 scripts/serve_load.py [--workers 1 2] [--max-batch 32 1] [--models default sface] [--clients 8]
        [--duration 20] [--max-requests 4000] [--json docs/serving_load.json]

Client and service share the machine: on a 2-core CPU the figures are what both together allow.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import random
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_arcface.service.process import ServiceProcess  # noqa: E402
from tests.faces import demo_face, jpeg_bytes, photo_of  # noqa: E402

KEY = "load-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
MIX = {"verify": 4, "identify": 4, "enroll": 1}


def photo_pool(count, seed=0):
    """``count`` JPEGs of the 8 demo faces on canvases, each with its own faint noise (distinct content)."""
    rng = np.random.default_rng(seed)
    crops = [demo_face(name, n) for name in ("Grace_Hopper", "Eileen_Collins") for n in range(1, 5)]
    pool = []
    for i in range(count):
        photo = photo_of([crops[i % len(crops)]]).astype(np.int16) + rng.integers(-2, 3, (480, 640, 3))
        pool.append((i % len(crops) // 4, jpeg_bytes(np.clip(photo, 0, 255).astype(np.uint8), quality=90)))
    return pool


def percentiles(values):
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    return {f"p{q}": round(float(np.percentile(values, q)) * 1000, 1) for q in (50, 95, 99)}


def run_load(url, clients, duration, max_requests, photos, seed=0):
    """The clients' requests for ``duration`` seconds or ``max_requests`` in all: per-operation latencies and
    errors."""
    import httpx

    deadline, sent, lock = time.monotonic() + duration, [0], threading.Lock()
    latencies = {name: [] for name in MIX}
    errors = {name: 0 for name in MIX}
    error_examples = []
    names, weights = list(MIX), list(MIX.values())

    def client(number):
        chooser = random.Random(seed * 1000 + number)
        with httpx.Client(base_url=url, timeout=120) as session:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                    count = sent[0]
                operation = chooser.choices(names, weights)[0]
                (_, a), (_, b) = chooser.choice(photos), chooser.choice(photos)
                start = time.perf_counter()
                try:
                    if operation == "verify":
                        answer = session.post("/verify", files={"image_a": ("a.jpg", a), "image_b": ("b.jpg", b)})
                    elif operation == "identify":
                        answer = session.post("/identify", files={"image": ("q.jpg", a)})
                    else:
                        answer = session.post("/enroll", headers=AUTH, data={"identity": f"person {number}-{count}"},
                                              files=[("images", ("e.jpg", photos[count % len(photos)][1]))])
                    ok = answer.status_code == 200
                    detail = answer.text[:200]
                except httpx.HTTPError as error:
                    ok, detail = False, repr(error)
                elapsed = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies[operation].append(elapsed)
                    else:
                        errors[operation] += 1
                        if len(error_examples) < 5:
                            error_examples.append(f"{operation}: {detail}")

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.monotonic() - started
    every = [value for values in latencies.values() for value in values]
    return {"seconds": round(elapsed, 1), "requests_ok": len(every), "errors": sum(errors.values()),
            "throughput_per_s": round(len(every) / elapsed, 2), **percentiles(every),
            "by_operation": {name: {"ok": len(latencies[name]), "errors": errors[name],
                                    **percentiles(latencies[name])} for name in MIX},
            "error_examples": error_examples}


def stage_times(model, photos, count=20):
    """Median ms per photo of each stage of a request, in this process, one thread: decoding, finding the face
    (detection, alignment, quality), embedding it."""
    from keras_arcface.data.images import decode_image
    from keras_arcface.verification import FaceVerifier

    verifier = FaceVerifier(None if model == "default" else model)
    times = {"decode": [], "find_face": [], "embed": []}
    for _, data in photos[:count + 1]:
        start = time.perf_counter()
        image = decode_image(data)
        found = time.perf_counter()
        face = verifier.find_face(image)
        embedded = time.perf_counter()
        verifier.embedder.embed(face.aligned[None])
        end = time.perf_counter()
        for name, seconds in zip(times, (found - start, embedded - found, end - embedded)):
            times[name].append(seconds)
    return {name: round(float(np.median(values[1:])) * 1000, 1) for name, values in times.items()}  # (1st: warm-up)


def table(rows):
    """The rows as the Markdown table docs/serving.md shows."""
    lines = ["| model | workers | max batch | requests/s | p50 ms | p95 ms | p99 ms | errors | faces per model call |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model'].split(':')[0]} | {row['workers']} | {row['max_batch']} | "
                     f"{row['throughput_per_s']:.1f} | {row['p50']:.0f} | {row['p95']:.0f} | {row['p99']:.0f} | "
                     f"{row['errors']} | {row['mean_faces_per_model_call']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--max-batch", type=int, nargs="+", default=[32, 1],
                        help="the service's --max-batch (1: no batching)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per setting")
    parser.add_argument("--max-requests", type=int, default=4000, help="requests per setting, at most")
    parser.add_argument("--threads", type=int, default=4, help="the service's --threads (per worker)")
    parser.add_argument("--models", nargs="+", default=["default"],
                        help="the service's --model for each run (default: the zoo's default)")
    parser.add_argument("--repeat", type=int, default=1, help="run every setting this many times, in turn (runs on a "
                                                              "shared machine drift: compare within a round)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    import httpx

    photos = photo_pool(200)
    rows = []
    settings = [(model, workers, max_batch) for model in args.models for workers in args.workers
                for max_batch in args.max_batch] * args.repeat
    for model_name, workers, max_batch in settings:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="serve-load-"))
        env = dict(os.environ, KERAS_ARCFACE_API_KEYS=KEY)
        model = [] if model_name == "default" else ["--model", model_name]
        with ServiceProcess("--gallery", folder / "faces.npz", "--workers", workers, "--max-batch", max_batch,
                            "--threads", args.threads, *model, env=env, log=folder / "serve.log") as service:
            with httpx.Client(base_url=service.url, timeout=120) as session:  # someone to find
                for person, (_, photo) in ((p, photos[p * 4]) for p in (0, 1)):
                    session.post("/enroll", headers=AUTH, data={"identity": f"seed {person}"},
                                 files=[("images", ("s.jpg", photo))]).raise_for_status()
            run_load(service.url, args.clients, min(3.0, args.duration), 200, photos, seed=99)  # warm-up
            result = run_load(service.url, args.clients, args.duration, args.max_requests, photos)
            readiness = [service.get("/ready")[1] for _ in range(4 * workers)]  # (each asks one worker)
        row = {"model": readiness[0]["model"], "workers": workers, "max_batch": max_batch,
               "clients": args.clients, "threads": args.threads,
               "mean_faces_per_model_call": max(r["embedding"]["mean_batch"] or 0 for r in readiness),
               **result}
        rows.append(row)
        print(f"{row['model']}: workers {workers}, max batch {max_batch:>3}, {args.clients} clients: "
              f"{row['throughput_per_s']:6.1f} req/s, p50 {row['p50']} ms, p95 {row['p95']} ms, "
              f"p99 {row['p99']} ms, {row['errors']} errors, "
              f"mean batch {row['mean_faces_per_model_call']}", flush=True)
    print(table(rows))
    stages = {model: stage_times(model, photos) for model in args.models}
    for model, times in stages.items():
        print(f"{model}: ms per photo, one thread: " + ", ".join(f"{name} {ms}" for name, ms in times.items()))
    if args.json:
        record = {"command": "python3 " + " ".join(sys.argv), "cpu_count": os.cpu_count(), "mix": MIX, "rows": rows,
                  "stages_ms_per_photo": stages}
        pathlib.Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
