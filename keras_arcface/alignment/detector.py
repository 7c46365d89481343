"""Face detection with OpenCV's YuNet (five landmarks per face), and face alignment."""

import dataclasses
import os
import pathlib

import numpy as np

from keras_arcface.alignment.warp import warp_face
from keras_arcface.errors import InputError

#: Environment variable naming the YuNet .onnx file when no path is given.
DETECTOR_ENV = "KERAS_ARCFACE_DETECTOR"
#: The YuNet file installed with the package (origin, sha256 and licence in models/README.md).
BUNDLED_DETECTOR = pathlib.Path(__file__).parent / "models" / "face_detection_yunet_2023mar_int8bq.onnx"
BUNDLED_DETECTOR_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
#: Longer sides above this are shrunk for detection only (landmarks scaled back).
MAX_DETECTION_SIDE = 800


class NoFaceError(InputError):
    """No face was found (at the score threshold) in an image."""


#: The ways to pick one face of several: "best" (default): the largest face among those whose quality is at
#: least half the best face's (a whole, clear face over a bigger one cut by the border or blurred);
#: "largest" box; "center": the box nearest the image centre (the convention of LFW's aligned crops).
CHOICES = ("best", "largest", "center")
#: ``rotate``: "auto" tries the photo turned by 90, 180 and 270 degrees when no face is found, or the best
#: face's quality is below :data:`ROTATE_BELOW_QUALITY` or its detection score below
#: :data:`ROTATE_BELOW_SCORE`, and keeps the turn whose best face has the highest detection score (the
#: upright one on ties); "none".
ROTATIONS = ("auto", "none")
ROTATE_BELOW_QUALITY, ROTATE_BELOW_SCORE = 0.8, 0.9


@dataclasses.dataclass
class Face:
    box: np.ndarray        # x, y, w, h
    landmarks: np.ndarray  # (5, 2): eye at smaller x, other eye, nose, mouth corners (same order)
    score: float


@dataclasses.dataclass(frozen=True)
class LocatedFace:
    """One face of a photo: ``number`` (1, 2, ... left to right), its ``box`` (x, y, w, h), ``landmarks`` and
    detection ``score`` in the photo's own pixels (as given, before any turn), its
    :class:`~keras_arcface.alignment.quality.FaceQuality`, ``rotation`` (degrees counter-clockwise the photo
    was turned to find it upright; 0 for most photos) and its aligned crop for the aligner's spec."""

    number: int
    box: tuple
    landmarks: np.ndarray = dataclasses.field(repr=False)
    score: float
    quality: object
    rotation: int
    aligned: np.ndarray = dataclasses.field(repr=False)


class FaceAligner:
    """YuNet detection, one face picked, similarity warp onto the template of ``spec`` (an
    :class:`~keras_arcface.runtime.InputSpec`: the model's crop size and five-point template;
    default the ArcFace 112x112 template).

    ``model_path`` defaults to ``$KERAS_ARCFACE_DETECTOR``, else the bundled YuNet file.
    ``choose`` picks one face of several (:data:`CHOICES`; default "best"), ``rotate`` turns the photo when
    no upright face is found (:data:`ROTATIONS`; default "auto").  ``min_score`` drops weak detections.
    Input images are RGB uint8; grey and RGBA are converted.
    """

    def __init__(self, model_path=None, score_threshold=0.5, nms_threshold=0.3, min_score=0.5,
                 choose="best", spec=None, rotate="auto"):
        import cv2

        from keras_arcface.runtime.embedder import DEFAULT_SPEC

        model_path = model_path or os.environ.get(DETECTOR_ENV) or BUNDLED_DETECTOR
        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"the YuNet face detector {model_path} is missing: pass the path of a "
                f"face_detection_yunet_2023mar*.onnx, set {DETECTOR_ENV}, or reinstall keras-arcface (it bundles one)")
        if choose not in CHOICES:
            raise InputError(f"choose must be one of {CHOICES}, got {choose!r}")
        if rotate not in ROTATIONS:
            raise InputError(f"rotate must be one of {ROTATIONS}, got {rotate!r}")
        self.model_path = str(model_path)
        self.min_score, self.choose, self.rotate = float(min_score), choose, rotate
        self.spec = spec or DEFAULT_SPEC
        from keras_arcface.runtime.embedder import native_stderr_silenced

        with native_stderr_silenced():  # OpenCV's DNN notes that the new graph engine ignores targets
            self._detector = cv2.FaceDetectorYN.create(self.model_path, "", (320, 320), score_threshold,
                                                       nms_threshold, 5000)

    def detect(self, image_rgb):
        """Every face found, as :class:`Face` (landmarks in the input's pixel coordinates)."""
        import cv2

        image = as_rgb_uint8(image_rgb)
        height, width = image.shape[:2]
        if min(height, width) < 16:
            raise NoFaceError(f"image too small for face detection: {width}x{height}")
        factor = min(1.0, MAX_DETECTION_SIDE / max(height, width))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if factor < 1.0:
            bgr = cv2.resize(bgr, (int(round(width * factor)), int(round(height * factor))),
                             interpolation=cv2.INTER_AREA)
        self._detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._detector.detect(bgr)
        faces = []
        for row in ([] if rows is None else rows):
            if row[14] < self.min_score:
                continue
            faces.append(Face(box=row[:4] / factor, landmarks=row[4:14].reshape(5, 2) / factor,
                              score=float(row[14])))
        return faces

    def faces(self, image_rgb):
        """Every face of a photo as :class:`LocatedFace` (numbered left to right, each with its quality and
        aligned crop), upright: with ``rotate="auto"`` the photo is turned when no face is found or the best is
        doubtful (:data:`ROTATIONS`).  :class:`NoFaceError` when no turn shows a face."""
        image = as_rgb_uint8(image_rgb)
        found = self._faces_turned(image, 0)
        doubtful = (max((face.quality.score for face in found), default=0.0) < ROTATE_BELOW_QUALITY
                    or _best_score(found) < ROTATE_BELOW_SCORE)
        if self.rotate == "auto" and doubtful:
            # YuNet finds faces upside down or sideways too, with plausible landmarks and a quality up to 0.9,
            # but scores the upright face highest (tests/test_faces.py; 28 of LFW's 197 raw sample photos are
            # tried turned, and every one is kept upright)
            for turn in (90, 180, 270):
                turned = self._faces_turned(image, turn)
                if _best_score(turned) > _best_score(found):
                    found = turned
        if not found:
            raise NoFaceError("no face found" + (" (upright or turned by 90, 180 or 270 degrees)"
                                                 if self.rotate == "auto" else ""))
        return found

    def _faces_turned(self, image, degrees):
        from keras_arcface.alignment.quality import face_quality, inside_fraction
        from keras_arcface.alignment.warp import similarity_matrix

        turned = np.ascontiguousarray(np.rot90(image, degrees // 90))
        back = _turn_back(degrees, image.shape)
        located = []
        for face in sorted(self.detect(turned), key=lambda f: (f.box[0], f.box[1])):
            arcface_matrix = similarity_matrix(face.landmarks)
            arcface_crop = warp_face(turned, face.landmarks)
            quality = face_quality(arcface_crop, face.landmarks, face.score,
                                   inside_fraction(arcface_matrix, turned.shape))
            x, y, w, h = face.box
            corners = back(np.array([[x, y], [x + w, y + h]], np.float64))
            (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
            aligned = warp_face(turned, face.landmarks, size=self.spec.size, template=self.spec.landmarks)
            located.append(LocatedFace(len(located) + 1, (float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                                       back(face.landmarks), face.score, quality, degrees, aligned))
        return located

    def pick(self, faces, image_shape):
        """The face ``choose`` names among ``faces`` (anything with a ``box`` and a ``quality``: :class:`LocatedFace`,
        :class:`~keras_arcface.verification.FoundFace`)."""
        if not faces:
            raise NoFaceError("no face found")
        def area(face):
            return face.box[2] * face.box[3]

        if self.choose == "center":
            centre = np.array([image_shape[1] / 2, image_shape[0] / 2])
            return min(faces, key=lambda f: np.linalg.norm(np.asarray(f.box[:2]) + np.asarray(f.box[2:]) / 2 - centre))
        if self.choose == "largest":
            return max(faces, key=area)
        best = max(face.quality.score for face in faces)
        return max((face for face in faces if face.quality.score >= best / 2), key=area)

    def locate(self, image_rgb):
        """``(chosen face, every face found, its aligned RGB uint8 crop for the spec)``, faces as
        :class:`LocatedFace`; :class:`NoFaceError` if none."""
        image = as_rgb_uint8(image_rgb)
        faces = self.faces(image)
        face = self.pick(faces, image.shape)
        return face, faces, face.aligned

    def align(self, image_rgb):
        """The aligned RGB uint8 crop of the chosen face for the spec; :class:`NoFaceError` if none."""
        return self.locate(image_rgb)[2]


def _best_score(faces):
    return max((face.score for face in faces), default=-1.0)


def _turn_back(degrees, shape):
    """A function taking (N, 2) points of the photo turned counter-clockwise by ``degrees`` (np.rot90) back
    to the photo of ``shape`` (height, width, ...) as given."""
    height, width = shape[:2]

    def back(points):
        points = np.asarray(points, np.float64).reshape(-1, 2)
        x, y = points[:, 0], points[:, 1]
        if degrees == 90:    # turned (x', y') = (y, W - 1 - x)
            return np.stack([width - 1 - y, x], axis=1)
        if degrees == 180:
            return np.stack([width - 1 - x, height - 1 - y], axis=1)
        if degrees == 270:   # turned (x', y') = (H - 1 - y, x)
            return np.stack([y, height - 1 - x], axis=1)
        return points.copy()

    return back


def as_rgb_uint8(image):
    """An (H, W, 3) RGB uint8 view of a grey, RGB or RGBA uint8 array; other arrays are an InputError."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"images must be (H, W, 3) RGB, got shape {image.shape}")
    return image
