"""Every head under test, with the parameters of its float64 reference."""

import math

from keras_arcface.heads import (ArcFaceLayer, CombinedMarginLayer, CosFaceLayer, NormFaceLayer,
                                 SoftmaxHead, SphereFaceLayer)

# (id, reference name, class, constructor kwargs, angles where the formula changes piece)
HEAD_CASES = [
    ("softmax", "softmax", SoftmaxHead, {}, []),
    ("normface", "normface", NormFaceLayer, {"scale": 20.0}, []),
    ("sphereface", "sphereface", SphereFaceLayer, {"margin": 4, "lambda_base": 0.0, "lambda_min": 0.0},
     [math.pi / 4, math.pi / 2, 3 * math.pi / 4]),
    ("sphereface_annealed", "sphereface", SphereFaceLayer, {"margin": 4}, [math.pi / 2]),
    ("sphereface_normalised", "sphereface", SphereFaceLayer,
     {"margin": 3, "scale": 30.0, "lambda_base": 5.0, "lambda_min": 2.0}, [math.pi / 3, 2 * math.pi / 3]),
    ("cosface", "cosface", CosFaceLayer, {"scale": 64.0, "margin": 0.35}, []),
    ("arcface", "arcface", ArcFaceLayer, {"scale": 64.0, "margin": 0.5}, [math.pi - 0.5]),
    ("arcface_easy", "arcface", ArcFaceLayer, {"scale": 64.0, "margin": 0.5, "easy_margin": True},
     [math.pi / 2]),
    ("combined_cm1", "combined", CombinedMarginLayer, {"scale": 64.0, "m1": 1.0, "m2": 0.3, "m3": 0.2},
     [math.pi - 0.3]),
    ("combined_cm2", "combined", CombinedMarginLayer, {"scale": 64.0, "m1": 0.9, "m2": 0.4, "m3": 0.15},
     [(math.pi - 0.4) / 0.9]),
]

CASE_IDS = [case[0] for case in HEAD_CASES]
MARGIN_CASES = [case for case in HEAD_CASES if case[1] not in ("softmax", "normface")]


def reference_params(head):
    """The numbers the float64 reference needs, read from a built head's config and state."""
    params = dict(head.get_config())
    if isinstance(head, SphereFaceLayer):
        params["lambda"] = float(head.current_lambda())
    return params


def angles_to_test(breakpoints):
    """Near 0, near each breakpoint (both sides, incl. pi - m) and near pi."""
    thetas = [0.01, 0.3, 1.2, 2.0, math.pi - 0.01]
    for b in breakpoints:
        thetas += [b - 0.01, b + 0.01]
    return thetas
