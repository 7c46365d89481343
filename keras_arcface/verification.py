"""Are these two photos the same person?  Detection, alignment, embedding and the threshold in one object.

    from keras_arcface import FaceVerifier
    verifier = FaceVerifier()                    # the zoo's default model, bundled: offline, no TensorFlow
    result = verifier.verify("a.jpg", "b.jpg")   # paths or RGB uint8 arrays (colour_order="BGR" for OpenCV's)
    result.same, result.similarity, result.threshold
    table = verifier.compare(["a.jpg", "b.jpg", "c.jpg"])   # each photo detected and embedded once

Arrays are RGB (as PIL, imageio and matplotlib give them); OpenCV's ``cv2.imread`` gives BGR: say so with
``colour_order="BGR"`` (for the verifier, or per call).

A photo is read with :func:`~keras_arcface.data.images.read_image` (EXIF orientation, CMYK, 16-bit,
alpha), its faces are found by the bundled YuNet detector, the chosen one (largest by default) is
warped onto the ArcFace template, and the model embeds it (see :mod:`keras_arcface.embedding`).
The threshold is, in order: the ``threshold`` given, the one the model's card measured for ``far``
(a false-accept rate such as ``1e-3``), or the model's calibrated threshold.
"""

import dataclasses
import pathlib

import numpy as np

from keras_arcface.errors import InputError


@dataclasses.dataclass(frozen=True)
class FoundFace:
    """The face used from one image: its box (x, y, w, h) and detection score in the image's pixels,
    how many faces the detector found, and the aligned crop.  ``box`` is None for an aligned crop
    given as is (no detection)."""

    source: str
    box: tuple
    score: float
    faces_found: int
    aligned: np.ndarray = dataclasses.field(repr=False)

    def to_dict(self):
        return {"image": self.source, "box": None if self.box is None else [round(v, 1) for v in self.box],
                "detection_score": None if self.score is None else round(self.score, 4),
                "faces_found": self.faces_found}


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    """``same`` is None when no threshold is known (then only ``similarity`` means anything)."""

    similarity: float
    threshold: float
    threshold_source: str
    same: bool
    faces: tuple
    model: str

    def to_dict(self):
        return {"similarity": round(self.similarity, 6), "threshold": self.threshold,
                "threshold_source": self.threshold_source, "same": self.same, "model": self.model,
                "faces": [face.to_dict() for face in self.faces]}


class FaceVerifier:
    """Verification and embedding of raw photos with any model :func:`~keras_arcface.embedding.load_embedder`
    accepts (default: the zoo's default model in its bundled runtime format).

    ``detector``: a YuNet .onnx (default: the bundled one); ``choose``: "largest" or "center" when
    a photo shows several faces; ``threshold`` / ``far``: see the module docstring; ``colour_order``: the
    channel order of the arrays it is given, "RGB" (default) or "BGR" (OpenCV's), per call too.
    """

    def __init__(self, model=None, detector=None, threshold=None, far=None, choose="largest", spec=None,
                 colour_order="RGB", **zoo_options):
        from keras_arcface.embedding import load_embedder

        self.colour_order = _checked_colour_order(colour_order)
        self.embedder = load_embedder(model, spec=spec, **zoo_options)
        self.threshold, self.threshold_source = self._threshold(threshold, far)
        self._detector, self._choose, self._aligner = detector, choose, None

    def _threshold(self, threshold, far):
        if threshold is not None:
            if not -1.0 <= float(threshold) <= 1.0:
                raise InputError(f"threshold must be a cosine similarity in [-1, 1], got {threshold!r}",
                                 f"--threshold must be a cosine similarity in [-1, 1], got {threshold!r}")
            return float(threshold), "given"
        if far is not None:
            return self.embedder.reference.threshold_at_far(far)
        return self.embedder.reference.threshold, self.embedder.reference.threshold_source

    @property
    def aligner(self):
        if self._aligner is None:
            from keras_arcface.alignment import FaceAligner

            self._aligner = FaceAligner(self._detector, choose=self._choose, spec=self.embedder.spec)
        return self._aligner

    def find_face(self, image, name=None, colour_order=None):
        """The :class:`FoundFace` of a path or a uint8 array (``colour_order``: "RGB" or "BGR"; default the
        verifier's); errors name the file."""
        from keras_arcface.alignment import NoFaceError
        from keras_arcface.data.images import read_image

        if isinstance(image, (str, pathlib.Path)):
            name, image = str(image), read_image(image)
        elif _checked_colour_order(colour_order or self.colour_order) == "BGR":
            image = _bgr_to_rgb(np.asarray(image))
        name = name or "image"
        try:
            face, faces, aligned = self.aligner.locate(image)
        except NoFaceError as error:
            from keras_arcface.alignment.detector import as_rgb_uint8

            crop = self.embedder.spec.aligned_crop(as_rgb_uint8(image))  # an aligned crop given as is
            if crop is not None:
                return FoundFace(name, None, None, 0, np.ascontiguousarray(crop))
            raise NoFaceError(f"{name}: {error}; try a photo with one clear, frontal face") from None
        except InputError as error:
            raise type(error)(f"{name}: {error}") from None
        return FoundFace(name, tuple(float(v) for v in face.box), face.score, len(faces), aligned)

    def embed(self, image, colour_order=None):
        """The unit embedding (d,) of the chosen face of a photo (a path or a uint8 array)."""
        return self.embedder.embed(self.find_face(image, colour_order=colour_order).aligned[None])[0]

    def verify(self, image_a, image_b, colour_order=None):
        """A :class:`VerificationResult` for two photos (paths or arrays)."""
        faces = (self.find_face(image_a, None if isinstance(image_a, (str, pathlib.Path)) else "image A", colour_order),
                 self.find_face(image_b, None if isinstance(image_b, (str, pathlib.Path)) else "image B", colour_order))
        a, b = self.embedder.embed(np.stack([faces[0].aligned, faces[1].aligned]))
        similarity = float(np.clip(a @ b, -1.0, 1.0))
        same = None if self.threshold is None else bool(similarity >= self.threshold)
        return VerificationResult(similarity, self.threshold, self.threshold_source, same, faces,
                                  str(self.embedder.reference))

    def compare(self, images, colour_order=None):
        """Every photo against every other (a :class:`Comparison`): each is read, detected and embedded once,
        in one batch, where :meth:`verify` on every pair would do each photo once per pair it is in."""
        images = list(images)
        if not images:
            raise InputError("compare needs at least one photo")
        faces = tuple(self.find_face(image, None if isinstance(image, (str, pathlib.Path)) else f"image {i + 1}",
                                     colour_order) for i, image in enumerate(images))
        embeddings = self.embedder.embed(np.stack([face.aligned for face in faces]))
        similarities = np.clip(embeddings @ embeddings.T, -1.0, 1.0)
        return Comparison(faces, embeddings, similarities, self.threshold, self.threshold_source,
                          str(self.embedder.reference))


#: The channel orders an array may come in: RGB (PIL, imageio, matplotlib) or BGR (OpenCV).
COLOUR_ORDERS = ("RGB", "BGR")


def _checked_colour_order(order):
    if order not in COLOUR_ORDERS:
        raise InputError(f"colour_order must be one of {COLOUR_ORDERS} (BGR for OpenCV's arrays), got {order!r}")
    return order


def _bgr_to_rgb(image):
    """An OpenCV BGR / BGRA array as RGB / RGBA (grey arrays as they are)."""
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(np.concatenate([image[:, :, 2::-1], image[:, :, 3:]], axis=2))
    return image


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Photos compared all against all: each photo's :class:`FoundFace` (``faces``), their unit ``embeddings``
    (N, d), the cosine of every pair (``similarities``, N x N, symmetric) and the verdicts at ``threshold``
    (``same``, N x N booleans; None without a threshold)."""

    faces: tuple
    embeddings: np.ndarray = dataclasses.field(repr=False)
    similarities: np.ndarray
    threshold: float
    threshold_source: str
    model: str

    @property
    def same(self):
        return None if self.threshold is None else self.similarities >= self.threshold


@dataclasses.dataclass(frozen=True)
class EmbeddedFolder:
    """The embeddings of a folder's images: ``embeddings`` (N, d) of ``files`` (N paths), and ``skipped``
    (one "path: reason" line per image that could not be used)."""

    embeddings: np.ndarray
    files: list
    skipped: list


def embed_folder(directory, embedder, aligner=None, align_crops=False):
    """Embed every image under ``directory`` (recursively) with ``embedder``, as ``verify`` takes photos:
    an aligned crop of the embedder's input size (or an ArcFace 112x112 one, mapped onto its template) as it
    is, any other image detected and aligned by ``aligner`` (a :class:`~keras_arcface.alignment.FaceAligner`;
    default one with the bundled detector, made when first needed).  ``align_crops=True`` detects and aligns
    the crops too (``embed --align``).  Unusable images are skipped with their reason; none usable is an
    :class:`InputError` with a hint."""
    from keras_arcface.data.images import IMAGE_EXTENSIONS, read_image

    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise InputError(f"folder {directory} not found: pass a folder of images")
    paths = sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise InputError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {directory}")
    size = tuple(embedder.spec.size)
    aligners = [aligner] if aligner is not None else []

    def face_of(path):
        image = read_image(path)
        crop = None if align_crops else embedder.spec.aligned_crop(image)
        if crop is not None:
            return crop
        if not aligners:  # the first photo that is not an aligned crop
            from keras_arcface.alignment import FaceAligner

            aligners.append(FaceAligner(spec=embedder.spec))
        return aligners[0].align(image)

    faces, kept, skipped = collect_faces(paths, face_of)
    skipped = [f"{path}: {reason}" for path, reason in skipped]
    if not faces:
        hint = f"use readable photos that show one clear, frontal face each, or aligned {size[1]}x{size[0]} crops"
        raise InputError(f"no usable image among {len(paths)} under {directory} (first: {skipped[0]}); {hint}")
    return EmbeddedFolder(embedder.embed(np.stack(faces)), [str(path) for path in kept], skipped)


def collect_faces(paths, face_of, on_skip=None):
    """``(faces, kept paths, skipped)`` of ``paths``: ``face_of(path)`` returns the aligned face or raises
    an :class:`InputError` (a bad image, no face), whose reason goes to ``skipped`` as ``(path, reason)``
    (the path not repeated) and to ``on_skip(path, reason)``."""
    faces, kept, skipped = [], [], []
    for path in paths:
        try:
            face = face_of(path)
        except InputError as error:  # BadImageError and NoFaceError are InputErrors
            reason = str(error).removeprefix(f"{path}: ")
            skipped.append((str(path), reason))
            if on_skip is not None:
                on_skip(str(path), reason)
            continue
        faces.append(face)
        kept.append(path)
    return faces, kept, skipped
