"""The face-quality score's error-versus-discard curves, and the default operating point's error rates.

For LFW's pairs.txt and the CelebA hold-out benchmark (the shared aligned crops), with the zoo's default
model in its runtime format:

1. each face's :func:`~keras_arcface.alignment.quality.face_quality` from its crop and the alignment
   manifest (landmarks and detection score in the source photo; LFW's photos are 250 x 250, so the border
   factor is measured there; CelebA's photo sizes are not recorded, so that factor is left out);
2. FNMR at the model's FAR 1e-3 threshold (measured on LFW's 87 M impostor pairs) as the lowest-quality
   fraction of genuine pairs is discarded, against discarding at random (200 draws), and the partial
   areas up to 20 % discarded (:mod:`keras_arcface.evaluation.edc`);
3. the operating-point table: FRR and FAR of each pairs file at the FAR 1e-3 threshold and at LFW's
   best-accuracy threshold.

    python3 scripts/quality_edc.py [--data ../shared/data] [--cards NAME ...] [--write-cards]
        [--figure docs/quality_edc.png] [--json docs/quality_edc.json]

Steps 1-2 for the first model named (default: the zoo's default), step 3 for each (default: every listed
model); ``--write-cards`` records step 3's FAR 1e-3 row in each card's ``operating_point``.
"""

import argparse
import csv
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_arcface.alignment import recrop  # noqa: E402
from keras_arcface.alignment.quality import face_quality, inside_fraction  # noqa: E402
from keras_arcface.data import read_image  # noqa: E402
from keras_arcface.evaluation import read_pairs  # noqa: E402
from keras_arcface.evaluation.edc import (  # noqa: E402
    AREA_LIMIT,
    DISCARD_FRACTIONS,
    false_non_match_rates,
    partial_area,
    random_discard,
)
from keras_arcface.runtime.embedder import DEFAULT_SPEC  # noqa: E402
from keras_arcface.zoo import default_model, list_models, load_model, model_card  # noqa: E402

#: The size of LFW's deep-funneled photos (the border factor's frame).
LFW_PHOTO_SHAPE = (250, 250)
OPERATING_FAR = 1e-3
FACTORS = ("size", "detection", "pose", "sharpness", "exposure", "border")


def manifest_rows(manifest):
    return {row["path"]: row for row in csv.DictReader(open(manifest)) if row["path"]}


def quality_of(row, crop, photo_shape):
    """The quality of an aligned crop from its manifest row (landmarks, score, the alignment matrix)."""
    landmarks = np.array([float(row[f"lm{i}_{axis}"]) for i in range(5) for axis in "xy"]).reshape(5, 2)
    matrix = np.array([[float(row[k]) for k in ("m00", "m01", "m02")], [float(row[k]) for k in ("m10", "m11", "m12")]])
    inside = None if photo_shape is None else inside_fraction(matrix, photo_shape)
    return face_quality(crop, landmarks, float(row["score"]), inside)


def benchmark_sets(data):
    """``[(name, pairs, {image path: manifest row}, photo shape)]`` for LFW and the CelebA hold-out."""
    lfw, celeba = pathlib.Path(data) / "lfw", pathlib.Path(data) / "celeba"
    lfw_rows = manifest_rows(lfw / "manifest.csv")
    lfw_pairs = read_pairs(lfw / "pairs.txt", lfw / "aligned")
    lfw_map = {pair_path: lfw_rows[str(pathlib.Path(pair_path).relative_to(lfw)).replace("\\", "/")]
               for pair in lfw_pairs for pair_path in (pair.left, pair.right)}
    holdout = ROOT / "benchmarks" / "celeba-holdout"
    celeba_rows = manifest_rows(celeba / "manifest.csv")
    sources = {(row["identity"], int(row["number"])): row["source"]
               for row in csv.DictReader(open(holdout / "sources.csv"))}
    holdout_pairs = read_pairs(holdout / "pairs.txt", celeba / "aligned", check_exists=False)

    def celeba_path(pair_path):
        identity, number = pathlib.Path(pair_path).stem.rsplit("_", 1)
        return str(celeba / "aligned" / sources[(identity, int(number))])

    holdout_pairs = [type(pair)(celeba_path(pair.left), celeba_path(pair.right), pair.same, pair.line)
                     for pair in holdout_pairs]
    holdout_map = {path: celeba_rows["aligned/" + str(pathlib.Path(path).relative_to(celeba / "aligned"))]
                   for pair in holdout_pairs for path in (pair.left, pair.right)}
    return [("LFW", lfw_pairs, lfw_map, LFW_PHOTO_SHAPE), ("CelebA hold-out", holdout_pairs, holdout_map, None)]


def faces_of(pairs, rows, photo_shape):
    """The set's crops (decoded once) and each face's quality: model-independent."""
    paths = sorted(rows)
    crops = np.stack([read_image(path) for path in paths])
    return paths, crops, {path: quality_of(rows[path], crop, photo_shape) for path, crop in zip(paths, crops)}


def scores_of(pairs, paths, crops, embedder):
    embeddings = dict(zip(paths, embedder.embed(recrop(crops, DEFAULT_SPEC, embedder.spec))))
    return (np.array([float(embeddings[p.left] @ embeddings[p.right]) for p in pairs]),
            np.array([p.same for p in pairs]))


def operating_point(scores, same, far_threshold, accuracy_threshold):
    genuine, impostor = scores[same], scores[~same]
    return {"far_1e-3_threshold": {"threshold": far_threshold, "frr": float(np.mean(genuine < far_threshold)),
                                   "observed_far": float(np.mean(impostor >= far_threshold))},
            "lfw_best_accuracy_threshold": {"threshold": accuracy_threshold,
                                            "frr": float(np.mean(genuine < accuracy_threshold)),
                                            "observed_far": float(np.mean(impostor >= accuracy_threshold))}}


def error_versus_discard(name, pairs, quality, scores, same, far_threshold):
    genuine = scores[same]
    pair_quality = np.array([min(quality[p.left].score, quality[p.right].score) for p in pairs if p.same])
    curve = false_non_match_rates(genuine, pair_quality, far_threshold)
    random_mean, random_low, random_high = random_discard(genuine, far_threshold)
    random_area = partial_area(random_mean)
    result = {
        "set": name, "genuine_pairs": int(same.sum()),
        "edc": {"fractions": DISCARD_FRACTIONS.tolist(), "quality": curve.tolist(), "random_mean": random_mean.tolist(),
                "random_5": random_low.tolist(), "random_95": random_high.tolist()},
        "partial_area": {"limit": AREA_LIMIT, "quality": partial_area(curve), "random": random_area},
        # each factor alone (a factor left out for this set counts as 1): which ones carry the score
        "factor_area_over_random": {factor: round(partial_area(false_non_match_rates(genuine, np.array(
            [min(quality[p.left].factors.get(factor, 1.0), quality[p.right].factors.get(factor, 1.0))
             for p in pairs if p.same]), far_threshold)) / random_area, 3) for factor in FACTORS},
        "quality_percentiles": dict(zip(("1", "5", "25", "50"), np.percentile(
            [q.score for q in quality.values()], [1, 5, 25, 50]).round(4).tolist())),
    }
    area = result["partial_area"]
    print(f"{name}: FNMR at the FAR {OPERATING_FAR:g} threshold {curve[0]:.4f}, after discarding 10 % by quality "
          f"{curve[10]:.4f} (random {random_mean[10]:.4f}); area to {AREA_LIMIT:.0%}: quality {area['quality']:.5f}, "
          f"random {area['random']:.5f} (ratio {area['quality'] / area['random']:.3f}; each factor alone "
          f"{result['factor_area_over_random']})", flush=True)
    return result


def plot(results, path, model):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4), squeeze=False)
    for axis, result in zip(axes[0], results):
        edc = result["edc"]
        fractions = np.array(edc["fractions"]) * 100
        axis.fill_between(fractions, edc["random_5"], edc["random_95"], color="0.85", label="random, 5-95 %")
        axis.plot(fractions, edc["random_mean"], color="0.4", linestyle="--", label="random discard (mean)")
        axis.plot(fractions, edc["quality"], color="C0", linewidth=2, label="lowest quality discarded")
        area = result["partial_area"]
        axis.set_title(f"{result['set']} ({result['genuine_pairs']} genuine pairs)\narea to "
                       f"{area['limit']:.0%}: quality {area['quality']:.4f}, random {area['random']:.4f}")
        axis.set_xlabel("genuine pairs discarded (%)")
        axis.set_ylabel(f"FNMR at FAR {OPERATING_FAR:g}")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"Error versus discard of keras-arcface's face-quality score ({model})", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    parser.add_argument("--cards", nargs="+", help="zoo names whose operating point to measure (default: every "
                                                   "listed model); the curves are drawn for the first")
    parser.add_argument("--write-cards", action="store_true", help="record each operating point in its card")
    parser.add_argument("--figure", default=str(ROOT / "docs" / "quality_edc.png"))
    parser.add_argument("--json", default=str(ROOT / "docs" / "quality_edc.json"))
    args = parser.parse_args()

    names = args.cards or [default_model()] + [name for name in list_models() if name != default_model()]
    sets = [(name, pairs, *faces_of(pairs, rows, shape)) for name, pairs, rows, shape in benchmark_sets(args.data)]
    report = {"command": "python3 scripts/quality_edc.py", "models": {}}
    for index, name in enumerate(names):
        start = time.perf_counter()
        embedder, card = load_model(name), model_card(name)
        far_threshold, _ = embedder.reference.threshold_at_far(OPERATING_FAR)
        accuracy_threshold = card.thresholds(embedder.reference.format)["best_accuracy_threshold"]
        points, curves = {}, []
        for set_name, pairs, paths, crops, quality in sets:
            scores, same = scores_of(pairs, paths, crops, embedder)
            points[set_name] = operating_point(scores, same, far_threshold, accuracy_threshold)
            if index == 0:
                curves.append(error_versus_discard(set_name, pairs, quality, scores, same, far_threshold))
        report["models"][str(embedder.reference)] = points
        if index == 0:
            report.update(model=str(embedder.reference), far_threshold=far_threshold, sets=curves)
            plot(curves, args.figure, str(embedder.reference))
        print(f"{embedder.reference}: " + "; ".join(
            f"{set_name} " + ", ".join(f"FRR {p['frr']:.4f} (FAR {p['observed_far']:.4f}) at {p['threshold']:.4f}"
                                       for p in point.values())
            for set_name, point in points.items()) + f" ({time.perf_counter() - start:.0f} s)", flush=True)
        if args.write_cards:
            write_card(card, embedder.reference.format, far_threshold, points)
    pathlib.Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.json}, {args.figure}")


def write_card(card, fmt, far_threshold, points):
    data = json.loads(pathlib.Path(card.path).read_text())
    data["operating_point"] = {
        "far": f"{OPERATING_FAR:.0e}".replace("e-0", "e-"), "artifact": fmt, "threshold": far_threshold,
        "frr": {name: round(point["far_1e-3_threshold"]["frr"], 5) for name, point in points.items()},
        "observed_far": {name: round(point["far_1e-3_threshold"]["observed_far"], 5) for name, point in points.items()},
        "protocol": "the threshold measured for this false-accept rate on LFW's 87 M different-person pairs "
                    "(threshold_at_far); false rejects among the 3000 same-person pairs and accepts among the 3000 "
                    "different-person pairs of LFW's pairs.txt and of benchmarks/celeba-holdout/pairs.txt "
                    "(scripts/quality_edc.py)"}
    pathlib.Path(card.path).write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
