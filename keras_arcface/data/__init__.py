"""Face data: folder scanning with checks, decoding, the shared preprocessing, batches.

``FaceBatches`` (a ``keras.utils.PyDataset``) is imported on first use, so reading images needs
neither Keras nor TensorFlow.
"""

from keras_arcface.data.augment import AUGMENTATIONS, FaceAugmentation
from keras_arcface.data.folder import FaceFolder, read_identity_names, sample_faces
from keras_arcface.data.images import (
    IMAGE_SIZE,
    PIXEL_MEAN,
    PIXEL_STD,
    BadImageError,
    decode_image,
    preprocess,
    read_image,
)

__all__ = ["AUGMENTATIONS", "BadImageError", "FaceAugmentation", "FaceBatches", "FaceFolder", "IMAGE_SIZE",
           "PIXEL_MEAN", "PIXEL_STD",
           "decode_image", "preprocess", "read_identity_names", "read_image", "sample_faces"]


def __getattr__(name):
    if name == "FaceBatches":
        from keras_arcface.data.dataset import FaceBatches

        return FaceBatches
    raise AttributeError(f"module 'keras_arcface.data' has no attribute {name!r}")
