"""Image decoding and the one preprocessing every path shares: (x - 127.5) / 128 on RGB."""

import numpy as np

from keras_arcface.errors import InputError

#: The aligned face size of the ArcFace template.
IMAGE_SIZE = (112, 112)
#: Preprocessing constants (RGB, uint8 in): (x - MEAN) / STD.
PIXEL_MEAN, PIXEL_STD = 127.5, 128.0
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


class BadImageError(InputError):
    """An image that cannot be used: unreadable, corrupt, empty, or of the wrong size."""


def decode_image(data, source="image"):
    """Encoded bytes -> RGB uint8 (H, W, 3); grey is repeated, alpha dropped, 16-bit scaled."""
    import cv2

    array = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_UNCHANGED) if array.size else None
    if image is None:
        raise BadImageError(f"{source}: not a decodable image ({len(data)} bytes)")
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise BadImageError(f"{source}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


def read_image(path):
    """Read a file as RGB uint8; raises :class:`BadImageError` naming the file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise BadImageError(f"{path}: unreadable ({error.strerror or error})") from None
    return decode_image(data, source=str(path))


def preprocess(images):
    """uint8 RGB (..., H, W, 3) -> float32 (x - 127.5) / 128, the input of every backbone."""
    return (np.asarray(images, np.float32) - PIXEL_MEAN) / PIXEL_STD
