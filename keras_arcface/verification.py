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
import threading

import numpy as np

from keras_arcface.alignment.quality import GOOD_QUALITY
from keras_arcface.errors import InputError

#: Why a face was used, in the words every command prints.
CHOSEN_BY = {"best": "the largest face of good quality", "largest": "the largest face",
             "center": "the face nearest the centre"}


@dataclasses.dataclass(frozen=True)
class FoundFace:
    """A face of an image: ``number`` (1, 2, ... left to right), its box (x, y, w, h) and detection score in
    the image's pixels, its :class:`~keras_arcface.alignment.quality.FaceQuality`, ``rotation`` (degrees the
    photo was turned to find it upright), how many faces the image shows, the aligned crop, and when it was
    picked among several, ``chosen_by`` (why) and ``others`` (the faces not used).  ``box`` is None for an
    aligned crop given as is (no detection)."""

    source: str
    box: tuple
    score: float
    faces_found: int
    aligned: np.ndarray = dataclasses.field(repr=False)
    number: int = 1
    quality: object = None
    rotation: int = 0
    chosen_by: str = ""
    others: tuple = dataclasses.field(default=(), repr=False)

    def summary(self):
        """The face's own fields (no ``others``), as JSON-ready values."""
        return {"face": self.number, "box": None if self.box is None else [round(v, 1) for v in self.box],
                "detection_score": None if self.score is None else round(self.score, 4),
                "quality": None if self.quality is None else self.quality.to_dict(), "rotation": self.rotation}

    def to_dict(self):
        faces = sorted((self, *self.others), key=lambda face: face.number)
        return {"image": self.source, **self.summary(), "faces_found": self.faces_found, "chosen_by": self.chosen_by,
                "faces": [face.summary() for face in faces]}

    def choice_note(self):
        """The sentence every command prints when this face was picked among several (else None)."""
        if self.faces_found < 2:
            return None
        hint = "" if "asked for" in self.chosen_by else " (--face-a, --face-b or --face N picks another)"
        return f"{self.source}: {self.faces_found} faces found; face {self.number} used: {self.chosen_by}{hint}"

    def describe(self):
        """One line: where the face is, how good it is, and how it was chosen (the same words for every
        command)."""
        if self.box is None:
            return f"{self.source}: no face detected; used as an aligned crop (quality {self.quality.score:.2f})"
        x, y, w, h = self.box
        turned = f", photo turned {self.rotation} degrees to find it upright" if self.rotation else ""
        reasons = "" if self.quality.score >= GOOD_QUALITY else f": {'; '.join(self.quality.reasons)}"
        chosen = f"; {self.chosen_by}" if self.chosen_by else ""
        return (f"{self.source}: face {self.number} of {self.faces_found} at x={x:.0f} y={y:.0f} {w:.0f}x{h:.0f}, "
                f"detection score {self.score:.2f}, quality {self.quality.score:.2f}{reasons}{turned}{chosen}")


class LowQualityError(InputError):
    """A face below the quality asked for (``min_quality``); the message says why."""


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

    ``detector``: a YuNet .onnx (default: the bundled one); ``choose``: which face of several
    (:data:`~keras_arcface.alignment.CHOICES`; "best" by default); ``rotate``: "auto" (default) turns a photo
    whose face is not upright, "none"; ``min_quality``: faces below this quality score are refused with
    their reasons (:class:`LowQualityError`); ``threshold`` / ``far``: see the module docstring;
    ``colour_order``: the channel order of the arrays it is given, "RGB" (default) or "BGR" (OpenCV's), per
    call too.
    """

    def __init__(self, model=None, detector=None, threshold=None, far=None, choose="best", spec=None,
                 colour_order="RGB", rotate="auto", min_quality=None, **zoo_options):
        from keras_arcface.alignment import CHOICES, ROTATIONS
        from keras_arcface.embedding import load_embedder

        if choose not in CHOICES:
            raise InputError(f"choose must be one of {CHOICES}, got {choose!r}")
        if rotate not in ROTATIONS:
            raise InputError(f"rotate must be one of {ROTATIONS}, got {rotate!r}")
        if min_quality is not None and not 0.0 <= float(min_quality) <= 1.0:
            raise InputError(f"min_quality must be a quality score in [0, 1], got {min_quality!r}",
                             f"--min-quality must be a quality score in [0, 1], got {min_quality!r}")
        self.colour_order = _checked_colour_order(colour_order)
        self.min_quality = None if min_quality is None else float(min_quality)
        self.embedder = load_embedder(model, spec=spec, **zoo_options)
        self.threshold, self.threshold_source = self._threshold(threshold, far)
        self._detector, self._choose, self._rotate = detector, choose, rotate
        self._aligners = threading.local()  # one detector a thread: OpenCV's YuNet is not shared between threads

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
        """This thread's :class:`~keras_arcface.alignment.FaceAligner` (made on first use): threads find faces at
        once, each with its own detector."""
        if getattr(self._aligners, "value", None) is None:
            from keras_arcface.alignment import FaceAligner

            self._aligners.value = FaceAligner(self._detector, choose=self._choose, spec=self.embedder.spec,
                                               rotate=self._rotate)
        return self._aligners.value

    def find_faces(self, image, name=None, colour_order=None):
        """Every face of a path or a uint8 array as :class:`FoundFace` (numbered left to right, with quality;
        an aligned crop without a detectable face is one face as it is); of several, the one ``choose`` picks
        has its ``chosen_by`` said.  ``colour_order``: "RGB" or "BGR" (default the verifier's); errors name the
        file."""
        faces, shape = self._faces_and_shape(image, name, colour_order)
        if len(faces) < 2:
            return faces
        chosen = self.aligner.pick(faces, shape)
        return tuple(dataclasses.replace(face, chosen_by=CHOSEN_BY[self._choose]) if face is chosen else face
                     for face in faces)

    def _faces_and_shape(self, image, name, colour_order):
        from keras_arcface.alignment import NoFaceError
        from keras_arcface.data.images import read_image

        if isinstance(image, (str, pathlib.Path)):
            name, image = str(image), read_image(image)
        elif _checked_colour_order(colour_order or self.colour_order) == "BGR":
            image = _bgr_to_rgb(np.asarray(image))
        name = name or "image"
        try:
            located = self.aligner.faces(image)
        except NoFaceError as error:
            crop = self.crop_as_is(image, name)  # an aligned crop given as is
            if crop is not None:
                return (crop,), np.shape(image)
            raise NoFaceError(f"{name}: {error}; try a photo with one clear, frontal face") from None
        except InputError as error:
            raise type(error)(f"{name}: {error}") from None
        return tuple(FoundFace(name, face.box, face.score, len(located), face.aligned, face.number, face.quality,
                               face.rotation) for face in located), np.shape(image)

    def crop_as_is(self, image, name="image"):
        """The :class:`FoundFace` of an RGB uint8 array that is an aligned crop (the model's crop size, or an
        ArcFace 112 x 112 crop), taken as it is with no detection (quality from its sharpness and exposure);
        None for an image of any other size."""
        from keras_arcface.alignment.detector import as_rgb_uint8
        from keras_arcface.alignment.quality import face_quality
        from keras_arcface.runtime.crops import recrop
        from keras_arcface.runtime.embedder import DEFAULT_SPEC

        image = as_rgb_uint8(image)
        crop = self.embedder.spec.aligned_crop(image)
        if crop is None:
            return None
        crop = np.ascontiguousarray(crop)
        spec, arcface_size = self.embedder.spec, tuple(DEFAULT_SPEC.size)
        given_as_arcface = tuple(image.shape[:2]) == arcface_size and (tuple(spec.size) != arcface_size
                                                                        or spec.template is None)
        arcface_crop = image if given_as_arcface else recrop(crop[None], spec, DEFAULT_SPEC)[0]
        return FoundFace(name, None, None, 0, crop, quality=face_quality(arcface_crop, DEFAULT_SPEC.landmarks, None))

    def find_face(self, image, name=None, colour_order=None, face=None):
        """The :class:`FoundFace` used from a photo: face number ``face`` (1, 2, ...) when given, else the
        one ``choose`` picks; below ``min_quality`` it is a :class:`LowQualityError` with its reasons."""
        faces = self.find_faces(image, name, colour_order)
        if face is not None:
            if int(face) != face or not 1 <= face <= len(faces):
                raise InputError(f"{faces[0].source}: no face {face!r}: it shows {len(faces)} face"
                                 f"{'s' if len(faces) > 1 else ''} (numbered 1 to {len(faces)}, left to right)")
            chosen, why = faces[int(face) - 1], f"face {int(face)} asked for"
        else:
            chosen = next((f for f in faces if f.chosen_by), faces[0])
            why = chosen.chosen_by
        self.check_quality(chosen)
        return dataclasses.replace(chosen, chosen_by=why, others=tuple(f for f in faces if f is not chosen))

    def check_quality(self, face):
        """A :class:`LowQualityError` with the reasons when ``face`` is below ``min_quality``."""
        if self.min_quality is not None and face.quality is not None and face.quality.score < self.min_quality:
            reasons = "; ".join(face.quality.reasons) or "no single reason"
            raise LowQualityError(f"{face.source}: face {face.number}'s quality {face.quality.score:.2f} is below "
                                  f"the minimum {self.min_quality:g} ({reasons})")

    def embed(self, image, colour_order=None, face=None):
        """The unit embedding (d,) of the chosen face of a photo (a path or a uint8 array)."""
        return self.embedder.embed(self.find_face(image, colour_order=colour_order, face=face).aligned[None])[0]

    def verify(self, image_a, image_b, colour_order=None, face_a=None, face_b=None, any_face=False):
        """A :class:`VerificationResult` for two photos (paths or arrays): the chosen face of each (or face
        number ``face_a`` / ``face_b``); ``any_face=True`` compares every face of A with every face of B (of
        ``min_quality`` or more) and reports the best-matching pair."""
        names = [None if isinstance(image, (str, pathlib.Path)) else label
                 for image, label in ((image_a, "image A"), (image_b, "image B"))]
        if any_face:
            return self._best_pair(image_a, image_b, names, colour_order)
        faces = (self.find_face(image_a, names[0], colour_order, face_a),
                 self.find_face(image_b, names[1], colour_order, face_b))
        a, b = self.embedder.embed(np.stack([faces[0].aligned, faces[1].aligned]))
        return self._result(float(a @ b), faces)

    def _result(self, similarity, faces):
        similarity = float(np.clip(similarity, -1.0, 1.0))
        same = None if self.threshold is None else bool(similarity >= self.threshold)
        return VerificationResult(similarity, self.threshold, self.threshold_source, same, faces,
                                  str(self.embedder.reference))

    def _best_pair(self, image_a, image_b, names, colour_order):
        sides = []
        for image, name in zip((image_a, image_b), names):
            faces = self.find_faces(image, name, colour_order)
            usable = [face for face in faces if self.min_quality is None or face.quality.score >= self.min_quality]
            if not usable:
                self.check_quality(max(faces, key=lambda face: face.quality.score))
            sides.append((faces, usable))
        embeddings = self.embedder.embed(np.stack([face.aligned for _, usable in sides for face in usable]))
        count_a = len(sides[0][1])
        similarities = embeddings[:count_a] @ embeddings[count_a:].T
        i, j = np.unravel_index(int(np.argmax(similarities)), similarities.shape)
        why = f"the best-matching pair of {count_a} x {len(sides[1][1])} faces (--any-face)"
        faces = tuple(dataclasses.replace(usable[k], chosen_by=why,
                                          others=tuple(f for f in all_faces if f is not usable[k]))
                      for (all_faces, usable), k in zip(sides, (i, j)))
        return self._result(float(similarities[i, j]), faces)

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
    """The embeddings of a folder's images: ``embeddings`` (N, d) of ``files`` (N paths), ``faces`` (N
    dicts: face number, faces found in its photo, box, detection score, quality, rotation; box None for an
    aligned crop taken as is) and ``skipped`` (one "path: reason" line per image that could not be used)."""

    embeddings: np.ndarray
    files: list
    skipped: list
    faces: list = dataclasses.field(default_factory=list)


def embed_folder(directory, embedder, aligner=None, align_crops=False, all_faces=False):
    """Embed every image under ``directory`` (recursively) with ``embedder``, as ``verify`` takes photos:
    an aligned crop of the embedder's input size (or an ArcFace 112x112 one, mapped onto its template) as it
    is, any other image detected and aligned by ``aligner`` (a :class:`~keras_arcface.alignment.FaceAligner`;
    default one with the bundled detector, made when first needed): its chosen face, or every face with
    ``all_faces=True`` (one row each).  ``align_crops=True`` detects and aligns the crops too
    (``embed --align``).  Unusable images are skipped with their reason; none usable is an
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

    def faces_of(path):
        image = read_image(path)
        crop = None if align_crops else embedder.spec.aligned_crop(image)
        if crop is not None:
            return [(crop, {"face": 1, "faces_found": 1, "box": None, "detection_score": None, "quality": None,
                            "rotation": 0})]
        if not aligners:  # the first photo that is not an aligned crop
            from keras_arcface.alignment import FaceAligner

            aligners.append(FaceAligner(spec=embedder.spec))
        located = aligners[0].faces(image)
        chosen = located if all_faces else [aligners[0].pick(located, image.shape)]
        return [(face.aligned, {"face": face.number, "faces_found": len(located),
                                "box": [round(v, 1) for v in face.box],
                                "detection_score": round(face.score, 4), "quality": round(face.quality.score, 4),
                                "rotation": face.rotation}) for face in chosen]

    found, kept, skipped = collect_faces(paths, faces_of)
    rows = [(path, face) for path, faces in zip(kept, found) for face in faces]
    skipped = [f"{path}: {reason}" for path, reason in skipped]
    if not rows:
        hint = f"use readable photos that show one clear, frontal face each, or aligned {size[1]}x{size[0]} crops"
        raise InputError(f"no usable image among {len(paths)} under {directory} (first: {skipped[0]}); {hint}")
    return EmbeddedFolder(embedder.embed(np.stack([face[0] for _, face in rows])), [str(path) for path, _ in rows],
                          skipped, [face[1] for _, face in rows])


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
