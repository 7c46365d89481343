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


@dataclasses.dataclass
class Face:
    box: np.ndarray        # x, y, w, h
    landmarks: np.ndarray  # (5, 2): eye at smaller x, other eye, nose, mouth corners (same order)
    score: float


class FaceAligner:
    """YuNet detection, one face picked, similarity warp onto the template of ``spec`` (an
    :class:`~keras_arcface.runtime.InputSpec`: the model's crop size and five-point template;
    default the ArcFace 112x112 template).

    ``model_path`` defaults to ``$KERAS_ARCFACE_DETECTOR``, else the bundled YuNet file.
    ``choose="largest"`` (default) keeps the largest box; ``"center"`` the box whose centre is
    nearest the image centre (the convention of LFW's aligned crops).  ``min_score`` drops weak
    detections.  Input images are RGB uint8; grey and RGBA are converted.
    """

    def __init__(self, model_path=None, score_threshold=0.5, nms_threshold=0.3, min_score=0.5,
                 choose="largest", spec=None):
        import cv2

        from keras_arcface.runtime.embedder import DEFAULT_SPEC

        model_path = model_path or os.environ.get(DETECTOR_ENV) or BUNDLED_DETECTOR
        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"the YuNet face detector {model_path} is missing: pass the path of a "
                f"face_detection_yunet_2023mar*.onnx, set {DETECTOR_ENV}, or reinstall keras-arcface (it bundles one)")
        if choose not in ("largest", "center"):
            raise InputError(f"choose must be 'largest' or 'center', got {choose!r}")
        self.model_path = str(model_path)
        self.min_score, self.choose = float(min_score), choose
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

    def pick(self, faces, image_shape):
        if not faces:
            raise NoFaceError("no face found")
        if self.choose == "largest":
            return max(faces, key=lambda f: f.box[2] * f.box[3])
        centre = np.array([image_shape[1] / 2, image_shape[0] / 2])
        return min(faces, key=lambda f: np.linalg.norm(f.box[:2] + f.box[2:] / 2 - centre))

    def locate(self, image_rgb):
        """``(chosen face, every face found, its aligned RGB uint8 crop for the spec)``; :class:`NoFaceError`
        if none."""
        image = as_rgb_uint8(image_rgb)
        faces = self.detect(image)
        face = self.pick(faces, image.shape)
        return face, faces, warp_face(image, face.landmarks, size=self.spec.size, template=self.spec.landmarks)

    def align(self, image_rgb):
        """The aligned RGB uint8 crop of the chosen face for the spec; :class:`NoFaceError` if none."""
        return self.locate(image_rgb)[2]


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
