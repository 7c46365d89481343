"""Every head under test, with the parameters of its float64 reference."""

import math

from keras import ops

from keras_arcface.heads import (
    AdaFaceLayer,
    ArcFaceLayer,
    CombinedMarginLayer,
    CosFaceLayer,
    CurricularFaceLayer,
    ElasticArcFaceLayer,
    ElasticCosFaceLayer,
    MagFaceLayer,
    NormFaceLayer,
    PartialFCLayer,
    SoftmaxLayer,
    SphereFaceLayer,
    SubCenterArcFaceLayer,
)

# (id, reference name, class, constructor kwargs, angles where the formula changes piece)
HEAD_CASES = [
    ("softmax", "softmax", SoftmaxLayer, {}, []),
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
    ("subcenter_arcface", "subcenter", SubCenterArcFaceLayer, {"subcenters": 3, "scale": 64.0, "margin": 0.5},
     [math.pi - 0.5]),
    ("curricularface", "curricular", CurricularFaceLayer, {"scale": 64.0, "margin": 0.5}, [math.pi - 0.5]),
    ("adaface", "adaface", AdaFaceLayer, {"scale": 64.0, "margin": 0.4, "h": 0.333}, []),
    # norms of the test embeddings (0.5 - 4) fall inside [l_a, u_a], so the margin varies per sample
    ("magface", "magface", MagFaceLayer, {"scale": 64.0, "lower_norm": 1.0, "upper_norm": 5.0,
                                          "lower_margin": 0.45, "upper_margin": 0.8, "lambda_g": 35.0}, []),
    # evaluation (training=False) uses the mean margin; the draws are tested in test_new_heads.py
    ("elastic_arcface", "arcface", ElasticArcFaceLayer, {"scale": 64.0, "margin": 0.5, "std": 0.05, "seed": 3},
     [math.pi - 0.5]),
    ("elastic_cosface", "cosface", ElasticCosFaceLayer, {"scale": 64.0, "margin": 0.35, "std": 0.05, "seed": 3},
     []),
    # r = 1 is the full head; sampling (r < 1) is tested in test_partial_fc.py
    ("partial_fc", "arcface", PartialFCLayer, {"sample_rate": 1.0, "margin_head": "arcface",
                                              "margin_params": {"scale": 64.0, "margin": 0.5}}, [math.pi - 0.5]),
]

#: Heads whose margin is random in training (their loss form draws margins too).
RANDOM_IN_TRAINING = (ElasticArcFaceLayer, ElasticCosFaceLayer)

CASE_IDS = [case[0] for case in HEAD_CASES]
MARGIN_CASES = [case for case in HEAD_CASES if case[1] not in ("softmax", "normface")]


def set_test_state(head):
    """Non-initial state, so that the reference checks how the state enters the formula."""
    if isinstance(head, CurricularFaceLayer):
        head.t.assign(0.3)
    if isinstance(head, AdaFaceLayer):
        head.batch_mean.assign(2.0)
        head.batch_std.assign(1.2)


def reference_params(head):
    """The numbers the float64 reference needs, read from a built head's config and state."""
    params = dict(head.get_config())
    if isinstance(head, SphereFaceLayer):
        params["lambda"] = float(head.current_lambda())
    if isinstance(head, PartialFCLayer):
        params.update(head.margin_params)
    if isinstance(head, CurricularFaceLayer) and head.built:
        params["t"] = float(ops.convert_to_numpy(head.t))
    if isinstance(head, AdaFaceLayer) and head.built:
        params["batch_mean"] = float(ops.convert_to_numpy(head.batch_mean))
        params["batch_std"] = float(ops.convert_to_numpy(head.batch_std))
    return params


def angles_to_test(breakpoints):
    """Near 0, near each breakpoint (both sides, incl. pi - m) and near pi."""
    thetas = [0.01, 0.3, 1.2, 2.0, math.pi - 0.01]
    for b in breakpoints:
        thetas += [b - 0.01, b + 0.01]
    return thetas
