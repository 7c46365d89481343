"""Embedding image files and evaluating verification pairs with any embedder."""

import dataclasses
import json
import pathlib
import sys
import time

import numpy as np

from keras_arcface.data.images import BadImageError, read_image
from keras_arcface.evaluation.pairs import PairsFormatError, check_images_exist, limit_pairs, pairs_header, read_pairs
from keras_arcface.evaluation.protocol import (
    accuracy_at,
    auc,
    best_threshold,
    plot_roc,
    roc_curve,
    tar_at_far,
    verification_report,
)
from keras_arcface.files import write_text_atomically
from keras_arcface.runtime.embedder import flip_averaged


def load_faces(paths, spec):
    """Aligned crops for a model of ``spec``, uint8 RGB: crops of its size as they are, ArcFace
    112x112 crops (the shared data's) mapped onto its template (:meth:`InputSpec.aligned_crop`);
    raises naming the file for unreadable or other-size images."""
    faces = []
    for path in paths:
        image = read_image(path)
        crop = spec.aligned_crop(image)
        if crop is None:
            size = tuple(spec.size)
            raise BadImageError(f"{path}: size {image.shape[1]}x{image.shape[0]}, expected an aligned "
                                f"{size[1]}x{size[0]} crop (align raw photos first)")
        faces.append(crop)
    return np.stack(faces)


def embed_files(embedder, paths, flip=False, batch_size=64, label="embedding"):
    """(N, d) L2-normalised embeddings of the files (crops for the embedder's spec, see
    :func:`load_faces`), in order; with ``flip`` the embedding of the image plus that of its mirror
    image, normalised again."""
    paths = list(paths)
    from tqdm import tqdm

    on_terminal = getattr(sys.stderr, "isatty", lambda: False)()
    progress = tqdm(total=len(paths), desc=label, unit="face", file=sys.stderr, disable=not on_terminal)
    chunks = []
    start = time.perf_counter()
    for begin in range(0, len(paths), batch_size):
        faces = load_faces(paths[begin:begin + batch_size], embedder.spec)
        chunks.append(flip_averaged(embedder.embed, faces) if flip else embedder.embed(faces))
        progress.update(len(faces))
    progress.close()
    seconds = time.perf_counter() - start
    return np.concatenate(chunks), seconds


@dataclasses.dataclass
class PairScores:
    """The cosine of every pair of a pairs file (in file order, or the ``limit`` subset's order) and
    whether it is a same-person pair; ``folds`` for the protocol, ``images`` embedded in ``seconds``."""

    pairs: list
    scores: np.ndarray
    same: np.ndarray
    folds: int
    images: int
    seconds: float


def score_pairs(embedder, pairs_file, images_dir, flip=False, folds=None, limit=None):
    """Every pair's cosine under ``embedder``; every image must load (no partial results).

    ``folds``: default the pairs file's header when it declares several folds (10 for pairs.txt),
    else 10 (a one-set file such as pairsDevTest.txt is cross-validated in 10 consecutive blocks).
    ``limit``: a quick look at that many pairs, the same number of same and different pairs from
    every fold (:func:`~keras_arcface.evaluation.pairs.limit_pairs`).
    """
    pairs = read_pairs(pairs_file, images_dir, check_exists=False)
    if folds is None:
        header = pairs_header(pairs_file)
        folds = header[0] if header and header[0] >= 2 else 10
    if int(folds) != folds or folds < 2:
        raise PairsFormatError(f"folds must be an integer of at least 2 (cross-validation), got {folds!r}")
    folds = int(folds)
    if len(pairs) % folds or len(pairs) < 2 * folds:
        message = f"{pairs_file}: {len(pairs)} pairs do not split into {folds} equal folds; pass "
        raise PairsFormatError(f"{message}folds= dividing {len(pairs)}", f"{message}--folds dividing {len(pairs)}")
    if limit is not None:
        pairs = limit_pairs(pairs, folds, limit)
    check_images_exist(pairs_file, pairs, images_dir)
    unique = sorted({path for pair in pairs for path in (pair.left, pair.right)})
    embeddings, seconds = embed_files(embedder, unique, flip=flip)
    return PairScores(pairs, *pair_cosines(pairs, embeddings, unique), folds, len(unique), seconds)


def pair_cosines(pairs, embeddings, paths):
    """(cosine of each pair, whether it is a same-person pair); ``embeddings[i]`` is ``paths[i]``'s."""
    index = {path: i for i, path in enumerate(paths)}
    left = embeddings[[index[p.left] for p in pairs]]
    right = embeddings[[index[p.right] for p in pairs]]
    return np.sum(left * right, axis=1), np.array([p.same for p in pairs])


def evaluate_pairs(embedder, pairs_file, images_dir, flip=False, roc_path=None, folds=None, limit=None):
    """The LFW protocol on a pairs file (10-fold accuracy, ROC, TAR at FAR); ``flip``, ``folds`` and
    ``limit`` as :func:`score_pairs` takes them."""
    scored = score_pairs(embedder, pairs_file, images_dir, flip=flip, folds=folds, limit=limit)
    report = verification_report(scored.scores, scored.same, folds=scored.folds)
    report.update({"images": scored.images, "embed_seconds": scored.seconds,
                   "images_per_second": scored.images / scored.seconds if scored.seconds else None,
                   "flip": bool(flip), "model": str(getattr(embedder, "path", "model"))})
    if roc_path:
        label = pathlib.Path(report["model"]).name
        report["roc_png"] = str(plot_roc(scored.scores, scored.same, roc_path, label=label))
    return report


def evaluate_calibrated(embedder, calibration_pairs, test_pairs, images_dir, flip=False):
    """LFW View 1 style ("lfw-dev"): the best threshold on ``calibration_pairs`` (e.g.
    pairsDevTrain.txt) applied once to ``test_pairs`` (pairsDevTest.txt).  Returns the test
    accuracy at that threshold, the threshold, and the test pairs' AUC and TAR at FAR."""
    calibration = read_pairs(calibration_pairs, images_dir)
    test = read_pairs(test_pairs, images_dir)
    unique = sorted({path for pair in calibration + test for path in (pair.left, pair.right)})
    embeddings, seconds = embed_files(embedder, unique, flip=flip)
    threshold, calibration_accuracy = best_threshold(*pair_cosines(calibration, embeddings, unique))
    scores, same = pair_cosines(test, embeddings, unique)
    far, tar, _ = roc_curve(scores, same)
    return {"protocol": "threshold from the calibration pairs, applied to the test pairs",
            "calibration_pairs": len(calibration), "test_pairs": len(test), "threshold": threshold,
            "calibration_accuracy": calibration_accuracy, "accuracy": accuracy_at(scores, same, threshold),
            "auc": auc(far, tar), "tar_at_far": {str(f): tar_at_far(scores, same, f) for f in (1e-1, 1e-2)},
            "images": len(unique), "embed_seconds": seconds, "flip": bool(flip)}


def format_report(report):
    tar = report["tar_at_far"]
    rows = [("pairs", f"{report['pairs']} ({report['images']} images)"),
            (f"accuracy ({report['folds']}-fold)", f"{report['accuracy_mean'] * 100:.2f} % ± "
                                                    f"{report['accuracy_std'] * 100:.2f}"),
            ("ROC AUC", f"{report['auc']:.5f}")]
    rows += [(f"TAR @ FAR {far}", "n/a (too few pairs)" if value is None else f"{value * 100:.2f} %")
             for far, value in tar.items()]
    rows += [("best global threshold", f"{report['best_threshold']:.4f} "
                                       f"(accuracy {report['best_threshold_accuracy'] * 100:.2f} %)"),
             ("thresholds over folds", f"{min(report['fold_thresholds']):.4f} - "
                                       f"{max(report['fold_thresholds']):.4f}"),
             ("flip test", "yes" if report["flip"] else "no"),
             ("throughput", f"{report['images_per_second']:.1f} images/s")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def save_report(report, path):
    write_text_atomically(path, json.dumps(report, indent=1))
