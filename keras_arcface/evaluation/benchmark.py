"""Build a verification benchmark in LFW's format from a folder of faces that no training run uses.

``build_pairs_benchmark`` takes identities ``<root>/<identity>/<image>``, puts whole identities into
``folds`` folds (a person is in one fold only, as in LFW's View 2), and draws ``pairs_per_fold``
same-person and as many different-person pairs inside each fold, round-robin over the fold's
identities (and identity pairs) so that no person dominates.  It writes, under ``output``:

- ``pairs.txt``: ``folds pairs_per_fold``, then per fold its same then its different pairs;
- ``images/<identity>/<identity>_NNNN.jpg``: the identity's images in sorted file order, numbered
  from 1 (links to the originals, copies where links are not allowed), the naming
  :func:`keras_arcface.evaluation.pairs.image_path` reads;
- ``identities.txt``: the held-out names, one per line, for ``train --exclude``;
- ``sources.csv``: which original file (relative to ``root``) each numbered image is.

The draw depends only on the names, the files and ``seed``: the same inputs give the same files.
"""

import csv
import itertools
import os
import pathlib
import shutil

import numpy as np

from keras_arcface.data.folder import identity_files
from keras_arcface.data.images import IMAGE_EXTENSIONS
from keras_arcface.errors import InputError
from keras_arcface.evaluation.pairs import image_path


def identity_images(root, identity):
    """The image files of ``root/identity`` (subfolders included, as training labels them), sorted."""
    return [p for p in identity_files(pathlib.Path(root) / identity) if p.suffix.lower() in IMAGE_EXTENSIONS]


def _round_robin(groups, count, rng):
    """``count`` items drawn in turn from each group (each shuffled), skipping exhausted groups."""
    queues = [list(group) for group in groups]
    for queue in queues:
        rng.shuffle(queue)
    chosen = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    return chosen


def build_pairs_benchmark(root, identities, output, folds=10, pairs_per_fold=300, seed=0):
    """Write an LFW-format benchmark of ``identities`` (names of folders under ``root``) to ``output``.

    Identities go to folds in the order given (the first ``len // folds`` to fold 1, ...).  Raises
    :class:`InputError` when the identities do not split evenly into the folds or a fold has too few
    images for its pairs.  Returns the path of ``pairs.txt``.
    """
    identities = [str(name) for name in identities]
    if len(set(identities)) != len(identities):
        raise InputError("build_pairs_benchmark: identities must be distinct")
    if folds < 1 or pairs_per_fold < 1 or len(identities) % folds or len(identities) // folds < 2:
        raise InputError(f"{len(identities)} identities do not split into {folds} folds of at least 2; give a multiple "
                         f"of {folds} identities")
    root = pathlib.Path(root)
    images = {name: identity_images(root, name) for name in identities}
    output = pathlib.Path(output)
    rng = np.random.default_rng(seed)
    per_fold = len(identities) // folds
    same_lines, different_lines = [], []
    for fold in range(folds):
        names = identities[fold * per_fold:(fold + 1) * per_fold]
        same = [[(name, a, b) for a, b in itertools.combinations(range(1, len(images[name]) + 1), 2)]
                for name in names]
        different = [[(left, a, right, b) for a in range(1, len(images[left]) + 1)
                      for b in range(1, len(images[right]) + 1)] for left, right in itertools.combinations(names, 2)]
        for kind, groups, lines in (("same", same, same_lines), ("different", different, different_lines)):
            drawn = _round_robin(groups, pairs_per_fold, rng)
            if len(drawn) < pairs_per_fold:
                raise InputError(f"fold {fold + 1} ({', '.join(names)}) has only {len(drawn)} {kind}-person pairs, "
                                 f"fewer than pairs_per_fold={pairs_per_fold}")
            lines.append(["\t".join(map(str, pair)) for pair in drawn])
    body = [f"{folds}\t{pairs_per_fold}"]
    for fold in range(folds):
        body += same_lines[fold] + different_lines[fold]
    output.mkdir(parents=True, exist_ok=True)
    sources = []
    for name in identities:
        for number, source in enumerate(images[name], start=1):
            target = pathlib.Path(image_path(output / "images", name, number))
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            try:
                os.symlink(source.resolve(), target)
            except OSError:
                shutil.copyfile(source, target)
            sources.append((name, number, source.relative_to(root).as_posix()))
    (output / "pairs.txt").write_text("\n".join(body) + "\n")
    (output / "identities.txt").write_text("\n".join(identities) + "\n")
    with open(output / "sources.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "number", "source"])
        writer.writerows(sources)
    return output / "pairs.txt"
