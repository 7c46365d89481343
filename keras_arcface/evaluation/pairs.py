"""LFW pairs files: ``name n1 n2`` (same person) and ``name1 n1 name2 n2`` (different)."""

import dataclasses
import pathlib


class PairsFormatError(ValueError):
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


def read_pairs(pairs_file, images_dir, check_exists=True):
    """Every pair of a pairs file in file order, with image paths under ``images_dir``.

    The optional header (``10\\t300`` in pairs.txt, ``1100`` in pairsDevTrain.txt) is skipped.  Raises :class:`PairsFormatError` naming
    the line for a malformed line, and naming every missing image (first 10) if any is absent.
    """
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
            raise PairsFormatError(f"{pairs_file}:{number}: expected 'name n1 n2' or 'name1 n1 name2 n2', "
                                   f"got {text!r}") from None
    if not pairs:
        raise PairsFormatError(f"{pairs_file}: no pairs")
    if check_exists:
        missing = [(p.line, path) for p in pairs for path in (p.left, p.right)
                   if not pathlib.Path(path).is_file()]
        if missing:
            shown = "".join(f"\n  line {line}: {path}" for line, path in missing[:10])
            more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise PairsFormatError(f"{pairs_file}: {len(missing)} image(s) named by pairs are missing:"
                                   f"{shown}{more}")
    return pairs
