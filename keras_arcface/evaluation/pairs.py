"""LFW pairs files: ``name n1 n2`` (same person) and ``name1 n1 name2 n2`` (different)."""

import dataclasses
import pathlib

from keras_arcface.errors import InputError


class PairsFormatError(InputError):
    """A pairs file line that is neither form, or a pair naming a missing image."""


@dataclasses.dataclass(frozen=True)
class Pair:
    left: str
    right: str
    same: bool
    line: int


def image_path(images_dir, name, number):
    """LFW naming: <images>/<Name>/<Name>_<NNNN>.jpg."""
    return str(pathlib.Path(images_dir) / name / f"{name}_{int(number):04d}.jpg")


def pairs_header(pairs_file):
    """The fold layout a pairs file's first line declares: (folds, pairs per fold), or None.

    ``10 300`` (pairs.txt): 10 folds of 300 same and 300 different pairs; ``1100``
    (pairsDevTrain.txt): one fold of 1100 same and 1100 different pairs.
    """
    with open(pairs_file) as handle:
        fields = handle.readline().split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[0]), 2 * int(fields[1])
    if len(fields) == 1 and fields[0].isdigit():
        return 1, 2 * int(fields[0])
    return None


def read_pairs(pairs_file, images_dir, check_exists=True):
    """Every pair of a pairs file in file order, with image paths under ``images_dir``.

    The optional header (``10 300`` in pairs.txt, ``1100`` in pairsDevTrain.txt) is skipped; when
    present, the file must hold exactly the pairs it declares.  Raises :class:`PairsFormatError`
    naming the file and line for a malformed line, and the first missing images if any is absent.
    """
    if not pathlib.Path(pairs_file).is_file():
        raise PairsFormatError(f"pairs file {pairs_file} not found: pass an LFW-format pairs file (e.g. pairs.txt)")
    pairs = []
    lines = pathlib.Path(pairs_file).read_text().splitlines()
    for number, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields:
            continue
        try:
            if number == 1 and len(fields) in (1, 2) and all(f.isdigit() for f in fields):
                continue
            if len(fields) == 3:
                pairs.append(Pair(image_path(images_dir, fields[0], fields[1]),
                                  image_path(images_dir, fields[0], fields[2]), True, number))
            elif len(fields) == 4:
                pairs.append(Pair(image_path(images_dir, fields[0], fields[1]),
                                  image_path(images_dir, fields[2], fields[3]), False, number))
            else:
                raise ValueError
        except ValueError:
            raise PairsFormatError(f"{pairs_file}, line {number}: expected 'name n1 n2' or 'name1 n1 name2 n2', "
                                   f"got {text!r}") from None
    if not pairs:
        raise PairsFormatError(f"{pairs_file}: no pairs")
    header = pairs_header(pairs_file)
    if header is not None and header[0] * header[1] != len(pairs):
        raise PairsFormatError(f"{pairs_file}: the header declares {header[0]} fold(s) of {header[1]} pairs "
                               f"({header[0] * header[1]}) but the file holds {len(pairs)}; fix the header or the "
                               "file")
    if check_exists:
        check_images_exist(pairs_file, pairs, images_dir)
    return pairs


def check_images_exist(pairs_file, pairs, images_dir):
    """Raise :class:`PairsFormatError` naming the count and the first missing images of ``pairs``."""
    missing = [(p.line, path) for p in pairs for path in (p.left, p.right) if not pathlib.Path(path).is_file()]
    if missing:
        shown = "; ".join(f"line {line}: {path}" for line, path in missing[:3])
        raise PairsFormatError(f"{pairs_file}: {len(missing)} image(s) named by its pairs are missing under "
                               f"{images_dir} ({shown}{'; ...' if len(missing) > 3 else ''}); check --images")


def limit_pairs(pairs, folds, limit):
    """At most ``limit`` pairs that keep the fold layout: from each of the ``folds`` consecutive
    blocks, its first ``limit // (2 folds)`` same and first as many different pairs."""
    if len(pairs) % folds:
        message = f"{len(pairs)} pairs do not split into {folds} equal folds; choose "
        raise PairsFormatError(f"{message}folds= dividing {len(pairs)}", f"{message}--folds dividing {len(pairs)}")
    per_side = int(limit) // (2 * folds)
    if per_side < 1:
        message = f" {limit} is below 2 x {folds} folds: each fold needs one same and one different pair"
        raise PairsFormatError(f"limit={message}", f"--limit{message}")
    size = len(pairs) // folds
    chosen = []
    for k in range(folds):
        block = pairs[k * size:(k + 1) * size]
        chosen += [p for p in block if p.same][:per_side] + [p for p in block if not p.same][:per_side]
    return chosen
