"""Similarity warp of a face onto the ArcFace template (InsightFace's alignment recipe: a least-squares
similarity transform of the five landmarks)."""

import numpy as np

from keras_arcface.alignment.template import ALIGNED_SIZE, ARCFACE_TEMPLATE


def similarity_matrix(landmarks, template=ARCFACE_TEMPLATE):
    """2x3 similarity (4 dof) mapping the 5 landmarks onto the template, by LMEDS."""
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32).reshape(5, 2),
                                            template, method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("the five landmarks do not define a similarity transform")
    return matrix


def warp_face(image, landmarks, size=ALIGNED_SIZE):
    """Aligned crop (bilinear, black border).  Faces shrunk by more than 2x (scale < 0.5) are
    first resized with INTER_AREA (anti-aliasing) and the matrix composed with that resize."""
    import cv2

    matrix = similarity_matrix(landmarks)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        height, width = image.shape[:2]
        small = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        shrink = np.array([[small[0] / width, 0, 0], [0, small[1] / height, 0], [0, 0, 1]])
        matrix = matrix @ np.linalg.inv(shrink)
    return cv2.warpAffine(image, matrix, tuple(size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
