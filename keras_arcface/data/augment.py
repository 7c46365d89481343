"""Training-time augmentation of aligned faces: small similarity jitter plus photometric jitter.

Aligned 112x112 crops already sit on the ArcFace template, so geometry is only nudged (a few
pixels, a few degrees, a few percent of scale) to make the model tolerant of alignment error;
photometric jitter (brightness, contrast, saturation, occasional grey) stands in for the lighting
and camera variety a small training set lacks.  Every draw comes from a NumPy generator the
caller seeds, so a batch is reproducible whatever the worker order.  OpenCV (already the
alignment dependency) does the warps; Keras' random preprocessing layers keep a stateful seed
and would not be reproducible per batch index under ``PyDataset`` workers.
"""

import dataclasses

import numpy as np

from keras_arcface.errors import InputError


@dataclasses.dataclass(frozen=True)
class FaceAugmentation:
    """Ranges of the random jitter; each draw is uniform in [-r, r] (``grey``: a probability).

    ``shift``: translation as a fraction of the side; ``scale``: relative zoom; ``rotate``:
    degrees; ``brightness``: added offset as a fraction of 255; ``contrast`` and
    ``saturation``: relative gain about the image mean / the pixel's grey value.
    """

    shift: float = 0.0
    scale: float = 0.0
    rotate: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    grey: float = 0.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not 0.0 <= value or (field.name != "rotate" and value >= 1.0):
                raise InputError(f"augmentation {field.name} must be in [0, 1) (rotate: >= 0), got {value}")

    @property
    def geometric(self):
        return bool(self.shift or self.scale or self.rotate)

    def __call__(self, images, rng):
        """Augment uint8 RGB (N, H, W, 3) with ``rng`` (``np.random.Generator``); returns uint8."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise InputError(f"expected uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
        count = len(images)
        # Draw every parameter for the whole batch first: the stream does not depend on which
        # augmentations happen to be zero.
        shifts = rng.uniform(-1, 1, (count, 2)) * self.shift * images.shape[2]
        scales = 1.0 + rng.uniform(-1, 1, count) * self.scale
        angles = rng.uniform(-1, 1, count) * self.rotate
        offsets = rng.uniform(-1, 1, count) * self.brightness * 255.0
        contrasts = 1.0 + rng.uniform(-1, 1, count) * self.contrast
        saturations = 1.0 + rng.uniform(-1, 1, count) * self.saturation
        greys = rng.random(count) < self.grey
        out = images
        if self.geometric:
            out = np.stack([_warp(image, angle, scale, shift)
                            for image, angle, scale, shift in zip(images, angles, scales, shifts)])
        if not (self.brightness or self.contrast or self.saturation or self.grey):
            return out
        pixels = out.astype(np.float32)
        luma = pixels @ np.float32([0.299, 0.587, 0.114])
        saturations = np.where(greys, 0.0, saturations).astype(np.float32)
        pixels = luma[..., None] + (pixels - luma[..., None]) * saturations[:, None, None, None]
        means = luma.mean(axis=(1, 2))[:, None, None, None]
        pixels = means + (pixels - means) * contrasts[:, None, None, None].astype(np.float32)
        pixels += offsets[:, None, None, None].astype(np.float32)
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _warp(image, angle, scale, shift):
    """Rotate by ``angle`` degrees and zoom by ``scale`` about the centre, then translate."""
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), float(angle), float(scale))
    matrix[:, 2] += shift
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


#: Named settings for ``TrainConfig.augment`` / ``keras-arcface train --augment``.
AUGMENTATIONS = {
    "none": FaceAugmentation(),
    "light": FaceAugmentation(shift=0.03, scale=0.05, rotate=5.0, brightness=0.1, contrast=0.15,
                              saturation=0.2, grey=0.05),
    "medium": FaceAugmentation(shift=0.06, scale=0.1, rotate=10.0, brightness=0.2, contrast=0.3,
                               saturation=0.4, grey=0.1),
}


def augmentation(name):
    """The named :class:`FaceAugmentation`; a clear error lists the names."""
    try:
        return AUGMENTATIONS[name]
    except KeyError:
        raise InputError(f"unknown augmentation {name!r}; choose one of {sorted(AUGMENTATIONS)}") from None
