"""A face-quality score in [0, 1] with its reasons: how much a face can be trusted for recognition.

The score is the product of six factors, each in [0, 1] and 1 for a good face (ISO/IEC 29794-5 names
these capture-related components; the ramps below are round numbers chosen from what the model sees,
not fitted to a benchmark):

- **size**: the distance between the eyes in the photo's pixels; the ArcFace crop holds 35 px, so a face
  below that is upsampled: 1 from 32 px, 0 at 8 px.
- **detection**: YuNet's score: 1 from 0.9, 0 at 0.6.
- **pose**: yaw from the nose tip's offset off the eyes-mouth midline (about 0.55 * tan(yaw) eye distances
  on a head), roll from the eye line, pitch from the nose's height between eyes and mouth; 1 up to 25
  degrees of yaw (0 at 60), 1 up to 30 degrees of roll (0 at 60), 1 while the nose sits within 0.15 of
  its frontal height (0 at 0.40).
- **sharpness**: detail of the face on the ArcFace 112 x 112 crop, the fine (sigma 1) band's energy
  over the coarse (sigma 1 to 3) band's; a blurred or upsampled face has little fine detail: 1 from
  0.38, 0 at 0.18 (a demo face blurred with sigma 1.5 px scores about 0.25).
- **exposure**: the face's mean grey level (1 within 60-200, 0 at 15 and 245) times its contrast (the
  standard deviation: 1 from 25, 0 at 6).
- **border**: the fraction of the face's region (the crop's x 16-96, y 16-108) inside the photo; a face
  cut by the border is part black: 1 from 0.97, 0 at 0.75.

Proof that it predicts errors, not only looks plausible: its error-versus-discard curve on LFW and the
CelebA hold-out benchmark (``scripts/quality_edc.py``, docs/verification.md) against discarding at random.
"""

import dataclasses
import math

import numpy as np

#: The region of the ArcFace 112 x 112 crop that holds the face (x0, y0, x1, y1): brows to chin.
FACE_REGION = (16, 16, 96, 108)
#: A face with this score or more is "good"; below it verify / index / identify say why (and
#: ``--min-quality`` refuses below the value given).
GOOD_QUALITY = 0.5


def _ramp(value, zero, one):
    """0 at ``zero``, 1 at ``one``, linear between (either order), clipped."""
    return float(np.clip((value - zero) / (one - zero), 0.0, 1.0))


@dataclasses.dataclass(frozen=True)
class FaceQuality:
    """``score`` in [0, 1] (the product of ``factors``), the ``measures`` the factors come from, and
    ``reasons``: one phrase per factor below 1, worst first."""

    score: float
    factors: dict
    measures: dict

    @property
    def reasons(self):
        phrases = {
            "size": lambda m: f"small face ({m['eye_distance_px']:.0f} px between the eyes; 32 or more is good)",
            "detection": lambda m: f"weak detection (score {m['detection_score']:.2f})",
            "pose": lambda m: (f"turned face (yaw about {m['yaw_degrees']:.0f} degrees, roll {m['roll_degrees']:.0f},"
                               f" nose height {m['nose_height']:.2f})"),
            "sharpness": lambda m: f"blurred or low-resolution face (sharpness {m['sharpness']:.2f})",
            "exposure": lambda m: (f"poorly exposed face (mean grey {m['mean_grey']:.0f}, contrast "
                                   f"{m['contrast']:.0f})"),
            "border": lambda m: f"face cut by the photo's border ({m['inside_fraction']:.0%} of it inside)",
        }
        below = sorted((value, name) for name, value in self.factors.items() if value < 1.0)
        return [phrases[name](self.measures) for _, name in below]

    def to_dict(self):
        return {"score": round(self.score, 4), "factors": {k: round(v, 4) for k, v in self.factors.items()},
                "reasons": self.reasons}


def pose_of(landmarks):
    """``(yaw, roll, nose_height)``: yaw and roll in degrees from five landmarks (eyes, nose tip, mouth
    corners in YuNet's order), and the nose tip's height between the eye line (0) and the mouth line (1),
    about 0.49 on a frontal face (the ArcFace template's)."""
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye_left, eye_right, nose, mouth_left, mouth_right = points
    eyes = eye_right - eye_left
    eye_distance = max(float(np.hypot(*eyes)), 1e-6)
    roll = math.degrees(math.atan2(eyes[1], eyes[0]))
    # the face's own frame: x along the eye line, y towards the mouth
    axis_x = eyes / eye_distance
    axis_y = np.array([-axis_x[1], axis_x[0]])
    eye_mid, mouth_mid = (eye_left + eye_right) / 2, (mouth_left + mouth_right) / 2
    mouth_depth = float((mouth_mid - eye_mid) @ axis_y)
    nose_height = float((nose - eye_mid) @ axis_y) / mouth_depth if abs(mouth_depth) > 1e-6 else float("inf")
    # the face's midline (eye centre to mouth centre) where the nose is; the nose's offset off it
    midline = eye_mid + np.clip(nose_height, 0.0, 1.0) * (mouth_mid - eye_mid)
    offset = float((nose - midline) @ axis_x) / eye_distance
    yaw = math.degrees(math.atan(offset / 0.55))
    return yaw, roll, nose_height


#: The nose tip's height between the eye and mouth lines on the ArcFace template (a frontal face).
FRONTAL_NOSE_HEIGHT = pose_of(np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                        [41.5493, 92.3655], [70.7299, 92.2041]]))[2]


def inside_fraction(matrix, image_shape, grid=16):
    """The fraction of :data:`FACE_REGION` of the ArcFace crop that ``matrix`` (2x3, photo -> crop) takes
    from inside a photo of ``image_shape`` (height, width, ...)."""
    x0, y0, x1, y1 = FACE_REGION
    xs, ys = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    crop_points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    full = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    back = np.linalg.inv(full)
    source = crop_points @ back[:2, :2].T + back[:2, 2]
    height, width = image_shape[:2]
    inside = (source[:, 0] >= 0) & (source[:, 0] <= width - 1) & (source[:, 1] >= 0) & (source[:, 1] <= height - 1)
    return float(inside.mean())


def _grey(crop):
    crop = np.asarray(crop)
    if crop.ndim == 3:
        crop = crop[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return crop.astype(np.float32)


def sharpness_of(arcface_crop):
    """The fine (sigma 1) band's energy over the coarse (sigma 1 to 3) band's on the face region of an
    ArcFace 112 x 112 crop: contrast-free, low for a blurred or upsampled face."""
    import cv2

    grey = _grey(arcface_crop)
    fine_blur = cv2.GaussianBlur(grey, (0, 0), 1.0)
    coarse_blur = cv2.GaussianBlur(grey, (0, 0), 3.0)
    x0, y0, x1, y1 = FACE_REGION
    fine = (grey - fine_blur)[y0:y1, x0:x1]
    coarse = (fine_blur - coarse_blur)[y0:y1, x0:x1]
    return float(np.sqrt(np.mean(fine ** 2)) / max(np.sqrt(np.mean(coarse ** 2)), 1e-3))


def face_quality(arcface_crop, landmarks, detection_score, inside=None):
    """The :class:`FaceQuality` of a face: its ArcFace 112 x 112 crop (RGB or grey uint8), its five
    landmarks in the photo's pixels, the detector's score, and :func:`inside_fraction`.  A factor whose input
    is None (no detection for an aligned crop given as is; a photo of unknown size) is left out."""
    yaw, roll, nose_height = pose_of(landmarks)
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye_distance = float(np.hypot(*(points[1] - points[0])))
    grey = _grey(arcface_crop)
    x0, y0, x1, y1 = FACE_REGION
    region = grey[y0:y1, x0:x1]
    mean_grey, contrast = float(region.mean()), float(region.std())
    sharpness = sharpness_of(grey)
    factors = {
        "size": _ramp(eye_distance, 8.0, 32.0),
        "pose": (_ramp(abs(yaw), 60.0, 25.0) * _ramp(abs(roll), 60.0, 30.0)
                 * _ramp(abs(nose_height - FRONTAL_NOSE_HEIGHT), 0.40, 0.15)),
        "sharpness": _ramp(sharpness, 0.18, 0.38),
        "exposure": min(_ramp(mean_grey, 15.0, 60.0), _ramp(mean_grey, 245.0, 200.0)) * _ramp(contrast, 6.0, 25.0),
    }
    if detection_score is not None:
        factors["detection"] = _ramp(detection_score, 0.6, 0.9)
    if inside is not None:
        factors["border"] = _ramp(inside, 0.75, 0.97)
    measures = {"eye_distance_px": eye_distance, "detection_score": detection_score, "yaw_degrees": yaw,
                "roll_degrees": roll, "nose_height": nose_height, "sharpness": sharpness, "mean_grey": mean_grey,
                "contrast": contrast, "inside_fraction": inside}
    return FaceQuality(float(np.prod(list(factors.values()))), factors, measures)
