"""Enrolment speed against the model alone: faces per second of ``keras-arcface index`` (reading, hashing,
decoding in reader threads, detection or the crop taken as is, embedding in batches, a save per chunk) on a
folder ``<identity>/<photo>`` of aligned crops or raw photos, beside the model alone embedding the same faces
already decoded, aligned and prepared (the floor: batches of 64).  Not a timed test: run it on a quiet machine
and compare the two in one run.

    python3 scripts/enrol_benchmark.py --folder ../shared/data/lfw/aligned [--limit 2000] [--model NAME]

Run with an older checkout first on ``PYTHONPATH`` to get its "before" figure: without ``gallery.enrol`` it
times ``FaceIndex.build`` (what ``index`` ran then).
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from keras_arcface.alignment import recrop  # noqa: E402
from keras_arcface.data import read_image  # noqa: E402
from keras_arcface.data.images import IMAGE_EXTENSIONS  # noqa: E402
from keras_arcface.runtime.embedder import DEFAULT_SPEC  # noqa: E402
from keras_arcface.verification import FaceVerifier  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", required=True, help="<folder>/<identity>/<photo>")
    parser.add_argument("--limit", type=int, help="the first N photos (sorted) only")
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", help="append the result as one JSON line")
    args = parser.parse_args()

    folder = pathlib.Path(args.folder)
    photos = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:args.limit]
    verifier = FaceVerifier(args.model)
    embedder = verifier.embedder
    with tempfile.TemporaryDirectory() as work:
        subset = pathlib.Path(work) / "photos"  # links, so --limit enrols exactly these photos
        for photo in photos:
            (subset / photo.parent.name).mkdir(parents=True, exist_ok=True)
            (subset / photo.parent.name / photo.name).symlink_to(photo.resolve())
        start = time.perf_counter()
        try:
            from keras_arcface.gallery import enrol
        except ImportError:
            from keras_arcface.gallery import FaceIndex

            index, route = FaceIndex.build(subset, verifier=verifier), "FaceIndex.build (before enrol)"
        else:
            index, route = enrol(pathlib.Path(work) / "g.npz", subset, verifier)[0], "gallery.enrol"
        pipeline = time.perf_counter() - start
    images = [read_image(photo) for photo in photos]
    if all(tuple(image.shape[:2]) == tuple(DEFAULT_SPEC.size) for image in images):
        faces = recrop(np.stack(images), DEFAULT_SPEC, embedder.spec)  # prepared as the model wants them: not timed
    else:  # raw photos: the floor embeds the faces the pipeline found, aligned beforehand (not timed)
        from keras_arcface.errors import InputError

        found = []
        for photo, image in zip(photos, images):
            try:
                found.append(verifier.find_face(image, str(photo), colour_order="RGB").aligned)
            except InputError:
                continue
        faces = np.stack(found)
    embedder.embed(faces[:64])  # warm
    start = time.perf_counter()
    for begin in range(0, len(faces), 64):
        embedder.embed(faces[begin:begin + 64])
    alone = time.perf_counter() - start
    result = {"photos": len(photos), "faces": len(index), "model": str(embedder.reference), "route": route,
              "pipeline_faces_per_s": round(len(index) / pipeline, 1), "model_alone_faces_per_s":
              round(len(faces) / alone, 1), "ratio": round((len(index) / pipeline) / (len(faces) / alone), 3),
              "pipeline_s": round(pipeline, 1), "model_alone_s": round(alone, 1)}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
