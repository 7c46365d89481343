"""Image decoding, and the training pipeline's preprocessing: the default input spec's (x - 127.5) / 128 on RGB."""

import numpy as np

from keras_arcface.errors import InputError
from keras_arcface.runtime.embedder import DEFAULT_SPEC

#: The aligned face size and the preprocessing constants (RGB, uint8 in: (x - MEAN) / STD), all from
#: :data:`~keras_arcface.runtime.embedder.DEFAULT_SPEC`, their one owner.
IMAGE_SIZE, PIXEL_MEAN, PIXEL_STD = DEFAULT_SPEC.size, DEFAULT_SPEC.mean, DEFAULT_SPEC.std
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


class BadImageError(InputError):
    """An image that cannot be used: unreadable, corrupt, empty, or of the wrong size."""


def decode_image(data, source="image"):
    """Encoded bytes -> RGB uint8 (H, W, 3), whatever the photo: a JPEG's EXIF orientation is
    applied; CMYK and greyscale become RGB; 16-bit is scaled to 8; an alpha channel is composited
    onto white (a cut-out's transparent background does not turn black)."""
    import cv2

    array = np.frombuffer(data, np.uint8)
    image = None
    if array.size:
        is_jpeg = bytes(array[:2]) == b"\xff\xd8"
        # JPEG: ANYCOLOR | ANYDEPTH applies EXIF orientation and converts CMYK; others may carry alpha.
        image = cv2.imdecode(array, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if is_jpeg else cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BadImageError(f"{source}: not a decodable image ({len(data)} bytes)")
    if image.dtype == np.uint16:
        image = image / 257.0
    elif image.dtype == np.float32:  # e.g. a float TIFF or EXR in 0..1
        image = np.clip(image, 0.0, 1.0) * 255.0
    elif image.dtype != np.uint8:
        raise BadImageError(f"{source}: unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(np.float32) / 255.0
        image = image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8) if image.dtype != np.uint8 else image
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 2:  # grey + alpha was handled above only for 4 channels
        image = np.repeat(image[:, :, :1], 3, axis=2)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def read_image(path):
    """Read a file as RGB uint8 (see :func:`decode_image`); raises :class:`BadImageError` naming the file."""
    import os

    if os.path.isdir(path):
        raise BadImageError(f"{path}: is a folder, not an image file")
    if not os.path.exists(path):
        raise BadImageError(f"{path}: no such file")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise BadImageError(f"{path}: unreadable ({error.strerror or error})") from None
    return decode_image(data, source=str(path))


def preprocess(images):
    """uint8 RGB (..., H, W, 3) -> float32 (x - 127.5) / 128, the input of every backbone trained here
    (:meth:`InputSpec.normalize <keras_arcface.runtime.InputSpec.normalize>` of the default spec)."""
    return DEFAULT_SPEC.normalize(images)
