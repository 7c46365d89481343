"""Similarity warp of a face onto a model's template, the ArcFace one by default (InsightFace's
alignment recipe: a similarity transform of the five landmarks), and faces for a model's crop from a
folder of ArcFace crops (the mapping itself, :func:`~keras_arcface.runtime.crops.recrop`, lives in
the runtime layer)."""

import numpy as np

from keras_arcface.alignment.template import ALIGNED_SIZE, ARCFACE_TEMPLATE
from keras_arcface.runtime.crops import recrop


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
