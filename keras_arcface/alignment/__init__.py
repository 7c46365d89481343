"""Face alignment: YuNet landmarks and a similarity warp onto the ArcFace template."""

from keras_arcface.alignment.detector import (
                                              CHOICES,
                                              DETECTOR_ENV,
                                              ROTATIONS,
                                              Face,
                                              FaceAligner,
                                              LocatedFace,
                                              NoFaceError,
)
from keras_arcface.alignment.template import ALIGNED_SIZE, ARCFACE_TEMPLATE
from keras_arcface.alignment.warp import sample_faces_for, similarity_matrix, warp_face
from keras_arcface.runtime.crops import least_squares_similarity, recrop

__all__ = ["ALIGNED_SIZE", "ARCFACE_TEMPLATE", "CHOICES", "DETECTOR_ENV", "Face", "FaceAligner", "LocatedFace",
           "NoFaceError", "ROTATIONS", "least_squares_similarity", "recrop", "sample_faces_for", "similarity_matrix",
           "warp_face"]
