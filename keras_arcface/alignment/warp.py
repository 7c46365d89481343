"""Similarity warp of a face onto a model's template, the ArcFace one by default (InsightFace's
alignment recipe: a similarity transform of the five landmarks), and crops of one template as
another's."""

import numpy as np

from keras_arcface.alignment.template import ALIGNED_SIZE, ARCFACE_TEMPLATE


def similarity_matrix(landmarks, template=ARCFACE_TEMPLATE):
    """2x3 similarity (4 dof) mapping the 5 landmarks onto the template, by LMEDS."""
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32).reshape(5, 2),
                                            np.asarray(template, np.float32), method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("the five landmarks do not define a similarity transform")
    return matrix


def warp_face(image, landmarks, size=ALIGNED_SIZE, template=ARCFACE_TEMPLATE):
    """Aligned crop of ``size`` (height, width) with the landmarks on ``template`` (bilinear, black
    border).  Faces shrunk by more than 2x (scale < 0.5) are first resized with INTER_AREA
    (anti-aliasing) and the matrix composed with that resize."""
    import cv2

    matrix = similarity_matrix(landmarks, template)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        height, width = image.shape[:2]
        small = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        shrink = np.array([[small[0] / width, 0, 0], [0, small[1] / height, 0], [0, 0, 1]])
        matrix = matrix @ np.linalg.inv(shrink)
    return cv2.warpAffine(image, matrix, (int(size[1]), int(size[0])), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


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


def sample_faces_for(root, count, spec, seed=0):
    """``count`` aligned crops for a model of ``spec`` from a face folder ``<root>/<identity>/<image>``:
    crops of the spec's size as they are, else the folder's ArcFace 112x112 crops (the shared data's)
    mapped onto the spec's template by :func:`recrop`."""
    from keras_arcface.data import sample_faces
    from keras_arcface.errors import InputError
    from keras_arcface.runtime.embedder import DEFAULT_SPEC

    try:
        return sample_faces(root, count, image_size=spec.size, seed=seed)
    except InputError:
        if tuple(spec.size) == tuple(DEFAULT_SPEC.size):
            raise
    return recrop(sample_faces(root, count, image_size=DEFAULT_SPEC.size, seed=seed), DEFAULT_SPEC, spec)
