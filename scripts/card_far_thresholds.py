"""Measure the thresholds at FAR 1e-2 / 1e-3 / 1e-4 for zoo artifacts and write them into the cards.

LFW's 3000 different-person pairs cannot measure a FAR below 1 / 3000, so the impostor scores are
every pair of the 13,233 aligned LFW crops whose identities differ (about 87 million pairs): the
threshold at FAR f is the lowest cosine that accepts at most f of them.  Each artifact is measured
with its own runtime (Keras for ``keras``), on the same decoded crops.

    python3 scripts/card_far_thresholds.py --lfw ../shared/data/lfw/aligned [--cards sface ...]
        [--formats tflite_dynamic_int8 ...] [--save-embeddings DIR]
"""

import argparse
import json
import pathlib
import time

import numpy as np

from keras_arcface.alignment import recrop
from keras_arcface.data import read_image
from keras_arcface.evaluation.protocol import CARD_FARS, impostor_scores, threshold_at_far
from keras_arcface.runtime.embedder import DEFAULT_SPEC
from keras_arcface.zoo import list_models, load_model, model_card


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", required=True, help="aligned LFW crops, <root>/<Name>/<Name>_NNNN.jpg")
    parser.add_argument("--cards", nargs="+", help="zoo names (default: all)")
    parser.add_argument("--formats", nargs="+", help="artifact formats (default: every one of each card)")
    parser.add_argument("--save-embeddings", help="write <DIR>/<name>_<format>.npz (paths, embeddings)")
    args = parser.parse_args()

    root = pathlib.Path(args.lfw)
    paths = sorted(root.rglob("*.jpg"))
    identities = np.array([path.parent.name for path in paths])
    start = time.perf_counter()
    faces = np.stack([read_image(path) for path in paths])
    print(f"{len(paths)} crops of {len(set(identities))} people decoded in {time.perf_counter() - start:.0f} s")
    protocol = (f"lowest cosine accepting at most that fraction of the {{pairs:,}} different-identity pairs among "
                f"all {len(paths):,} aligned LFW crops (scripts/card_far_thresholds.py)")
    for name in args.cards or list_models(include_examples=True):
        card = model_card(name)
        data = json.loads(pathlib.Path(card.path).read_text())
        for fmt in args.formats or list(card.artifacts):
            if fmt not in card.artifacts:
                continue
            start = time.perf_counter()
            embedder = load_model(name, fmt)
            embeddings = embedder.embed(recrop(faces, DEFAULT_SPEC, embedder.spec))  # onto the model's own crop
            if args.save_embeddings:
                np.savez(pathlib.Path(args.save_embeddings) / f"{name}_{fmt}.npz",
                         paths=np.array([str(p.relative_to(root)) for p in paths]), embeddings=embeddings)
            impostor = impostor_scores(embeddings, identities)
            thresholds = {far: float(np.ceil(threshold_at_far(impostor, float(far)) * 1e4) / 1e4) for far in CARD_FARS}
            metric = next(m for m in data["metrics"] if m["benchmark"] == "LFW" and m["artifact"] == fmt)
            metric["threshold_at_far"] = thresholds
            metric["threshold_at_far_protocol"] = protocol.format(pairs=len(impostor))
            print(f"{name} {fmt}: {thresholds} ({len(impostor):,} impostor pairs, "
                  f"{time.perf_counter() - start:.0f} s)", flush=True)
            pathlib.Path(card.path).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
