"""Crops of one alignment template as another's: the least-squares similarity between two five-point
templates, applied to aligned crops.  In the runtime layer because every embedder takes ArcFace
112x112 crops for a model of another crop (:meth:`~keras_arcface.runtime.InputSpec.prepare`); the
photo aligner (:mod:`keras_arcface.alignment`) re-exports it."""

import numpy as np


def least_squares_similarity(points, targets):
    """2x3 similarity [[a, -b, tx], [b, a, ty]] minimising the squared distances from the mapped
    ``points`` to ``targets`` (each (n, 2) x, y): a linear least-squares problem in (a, b, tx, ty)."""
    points, targets = np.asarray(points, np.float64), np.asarray(targets, np.float64)
    x, y = points[:, 0], points[:, 1]
    ones, zeros = np.ones_like(x), np.zeros_like(x)
    system = np.concatenate([np.stack([x, -y, ones, zeros], 1), np.stack([y, x, zeros, ones], 1)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(system, np.concatenate([targets[:, 0], targets[:, 1]]), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def recrop(faces, source_spec, target_spec):
    """Aligned uint8 crops (N, H, W, 3) made for ``source_spec``'s template, as crops for
    ``target_spec``'s: the least-squares similarity from the first template to the second, applied
    to each crop (bilinear, black border).  The faces themselves where size and template agree."""
    import cv2

    faces = np.asarray(faces)
    source, target = source_spec.landmarks, target_spec.landmarks
    if tuple(source_spec.size) == tuple(target_spec.size) and np.array_equal(source, target):
        return faces
    matrix = least_squares_similarity(source, target)
    width_height = (target_spec.size[1], target_spec.size[0])
    return np.stack([cv2.warpAffine(face, matrix, width_height, flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0) for face in faces])
