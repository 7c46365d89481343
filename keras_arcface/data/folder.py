"""A folder of aligned face crops, ``<root>/<identity>/<image>``, checked before training."""

import concurrent.futures
import csv
import dataclasses
import json
import os
import pathlib
import warnings

import numpy as np

from keras_arcface.data.images import IMAGE_EXTENSIONS, IMAGE_SIZE, BadImageError, read_image
from keras_arcface.errors import InputError


@dataclasses.dataclass
class FaceFolder:
    """Every usable image of a face folder with its label; what was skipped and why.

    ``images`` holds the decoded uint8 RGB crops (N, H, W, 3) when scanned with
    ``keep_images=True`` (the default: 7.5k crops are 280 MB).  Labels are indices into
    ``class_names`` (sorted identity folder names).
    """

    root: str
    paths: list
    labels: np.ndarray
    class_names: list
    skipped: list  # (path, reason)
    images: np.ndarray = None

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def label_map(self):
        """identity name -> integer label."""
        return {name: index for index, name in enumerate(self.class_names)}

    def save_label_map(self, path):
        pathlib.Path(path).write_text(json.dumps(self.label_map, indent=1, sort_keys=True))

    @classmethod
    def scan(cls, root, image_size=IMAGE_SIZE, identities=None, exclude=(), keep_images=True,
             workers=4, warn=True):
        """Read and check every image under ``root``; bad ones are skipped and reported.

        Skipped, with a reason each: non-image files, unreadable or corrupt images, images of
        another size than ``image_size``, files outside identity folders.  An identity folder
        left with no usable image gets no label.  ``identities`` keeps only those names,
        ``exclude`` drops names.  Raises ``ValueError`` when nothing usable remains.
        """
        root = pathlib.Path(root)
        if not root.is_dir():
            raise InputError(f"face folder {root} does not exist or is not a directory: pass a folder of "
                             "<identity>/<image> aligned crops")
        skipped, candidates = [], []
        exclude = set(map(str, exclude))
        for entry in sorted(root.iterdir()):
            if not entry.is_dir():
                skipped.append((str(entry), "not inside an identity folder"))
                continue
            if entry.name in exclude or (identities is not None and entry.name not in identities):
                continue
            files = identity_files(entry)
            if not files:
                skipped.append((str(entry), "empty identity folder"))
            for path in files:
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    candidates.append((entry.name, path))
                else:
                    skipped.append((str(path), f"not an image file ({path.suffix or 'no extension'})"))

        def load(item):
            name, path = item
            try:
                image = read_image(path)
            except BadImageError as error:
                return name, path, None, str(error).split(": ", 1)[-1]
            if image.shape[:2] != tuple(image_size):
                return name, path, None, (f"size {image.shape[1]}x{image.shape[0]}, expected "
                                          f"{image_size[1]}x{image_size[0]}")
            return name, path, image, None

        with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
            loaded = list(pool.map(load, candidates))
        good = [(name, path, image) for name, path, image, reason in loaded if reason is None]
        skipped += [(str(path), reason) for _, path, _, reason in loaded if reason is not None]
        class_names = sorted({name for name, _, _ in good})
        emptied = sorted({name for name, _ in candidates} - set(class_names))
        skipped += [(str(root / name), "no usable image left in this identity folder") for name in emptied]
        if not good:
            raise InputError(f"no usable face images under {root} (expected <identity>/<image> crops of "
                             f"{image_size[1]}x{image_size[0]} px){_one_line_summary(skipped)}")
        index = {name: i for i, name in enumerate(class_names)}
        folder = cls(root=str(root), paths=[str(path) for _, path, _ in good],
                     labels=np.array([index[name] for name, _, _ in good], np.int32),
                     class_names=class_names, skipped=skipped,
                     images=np.stack([image for _, _, image in good]) if keep_images else None)
        if skipped and warn:
            warnings.warn(f"{root}: skipped {len(skipped)} item(s)" + _summary(skipped), stacklevel=2)
        return folder

    @classmethod
    def merge(cls, folders):
        """Several folders as one, identities kept apart (names prefixed by the folder name)."""
        names, paths, labels, skipped, images = [], [], [], [], []
        for folder in folders:
            prefix = os.path.basename(os.path.normpath(folder.root))
            offset = len(names)
            names += [f"{prefix}/{name}" for name in folder.class_names]
            paths += folder.paths
            labels.append(folder.labels + offset)
            skipped += folder.skipped
            images.append(folder.images)
        merged_images = None if any(i is None for i in images) else np.concatenate(images)
        return cls(root=os.pathsep.join(f.root for f in folders), paths=paths,
                   labels=np.concatenate(labels).astype(np.int32), class_names=names, skipped=skipped,
                   images=merged_images)


def identity_files(folder):
    """Every file under one identity folder (its subfolders included), sorted by path: the listing
    that :meth:`FaceFolder.scan` labels and that benchmarks number."""
    return sorted(p for p in pathlib.Path(folder).rglob("*") if p.is_file())


def _one_line_summary(skipped, limit=3):
    if not skipped:
        return ""
    shown = "; ".join(f"{path}: {reason}" for path, reason in skipped[:limit])
    return f": skipped {len(skipped)} item(s), {shown}{'; ...' if len(skipped) > limit else ''}"


def _summary(skipped, limit=10):
    lines = [f"\n  {path}: {reason}" for path, reason in skipped[:limit]]
    more = f"\n  ... and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return "".join(lines) + more


def sample_faces(root, count, image_size=IMAGE_SIZE, seed=0):
    """``count`` aligned crops drawn without replacement (seeded) from ``<root>/<identity>/<image>``,
    uint8 RGB (n, H, W, 3); only the drawn files are decoded.  Unusable files are skipped; a
    ``ValueError`` names the folder when it holds no usable crop of ``image_size``."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise InputError(f"face folder {root} does not exist or is not a directory: pass a folder of "
                         "<identity>/<image> aligned crops")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    order = np.random.default_rng(seed).permutation(len(paths))
    faces = []
    for index in order:
        try:
            image = read_image(paths[index])
        except BadImageError:
            continue
        if image.shape[:2] == tuple(image_size):
            faces.append(image)
        if len(faces) == count:
            break
    if not faces:
        raise InputError(f"no aligned {image_size[0]}x{image_size[1]} face crops under {root}")
    return np.stack(faces)


def read_identity_names(paths):
    """Identity names to exclude, from one file or a list of files: each a text file (one name per
    line) or a CSV whose first column holds them (a header ``id_a`` / ``name`` / ``identity`` is skipped)."""
    if not paths:
        return []
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    names = []
    for path in paths:
        with open(path, newline="") as handle:
            rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
        if rows and rows[0][0] in ("id_a", "name", "identity"):
            rows = rows[1:]
        names += [row[0].strip() for row in rows if row[0].strip() not in names]
    return names
