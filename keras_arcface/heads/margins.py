"""The margin formulas, one function each: the single implementation every path calls.

Each function maps the target cosine ``cos_y = cos(theta_y)`` (a float tensor, any shape)
to the target value on the cosine scale; the head multiplies it by its scale (``s``, or
``||x||`` for SphereFace).  Non-target classes always keep ``cos(theta_j)``.

Numerics: cosines are clipped to ``[-1 + COSINE_EPSILON, 1 - COSINE_EPSILON]`` before any
``sqrt``/``acos``, so values and gradients stay finite for every theta in [0, pi].
Only ``keras.ops`` is used: the same code runs on TensorFlow, JAX and under XLA.
"""

import math

from keras import ops

#: Cosines are kept this far inside [-1, 1] before sqrt/acos (float32 resolves it).
COSINE_EPSILON = 1e-7


def clip_cosine(cos_theta):
    """cos theta clipped to [-1 + eps, 1 - eps], the domain where acos/sqrt have finite slopes."""
    return ops.clip(cos_theta, -1.0 + COSINE_EPSILON, 1.0 - COSINE_EPSILON)


def sine_from_cosine(cos_theta):
    """sin theta = sqrt(1 - cos^2 theta) for theta in [0, pi], with a finite gradient."""
    cos_theta = clip_cosine(cos_theta)
    return ops.sqrt(1.0 - cos_theta * cos_theta)


def cosface_target(cos_theta, margin):
    """CosFace / AM-Softmax (Wang et al., CVPR 2018): cos(theta) - m."""
    return cos_theta - margin


def _cos_sin(margin):
    """cos m, sin m for a Python number (exact, keeps float64) or a tensor (per-sample margins)."""
    if isinstance(margin, (int, float)):
        return math.cos(margin), math.sin(margin)
    return ops.cos(margin), ops.sin(margin)


def arcface_target(cos_theta, margin, easy_margin=False):
    """ArcFace (Deng et al., CVPR 2019): cos(theta + m), computed without acos.

    cos(theta + m) = cos theta cos m - sin theta sin m.  Where theta + m > pi the angle
    would wrap and the target would grow again; there we use InsightFace's fallback
    ``cos theta - m sin m``, which keeps the target non-increasing in theta over [0, pi]
    (it steps down from -1 to -cos m - m sin m at theta = pi - m).
    ``easy_margin`` applies the margin only where cos theta > 0 (theta < pi/2).
    ``margin`` is a number or a tensor shaped like ``cos_theta`` (per-sample margins:
    MagFace, ElasticFace).
    """
    cos_theta = clip_cosine(cos_theta)
    cos_m, sin_m = _cos_sin(margin)
    with_margin = cos_theta * cos_m - sine_from_cosine(cos_theta) * sin_m
    if easy_margin:
        return ops.where(cos_theta > 0.0, with_margin, cos_theta)
    wraps = cos_theta <= -cos_m  # theta >= pi - m, as cos(pi - m) = -cos m
    return ops.where(wraps, cos_theta - margin * sin_m, with_margin)


def combined_margin_target(cos_theta, m1, m2, m3):
    """Combined margin (ArcFace paper, Sec. 3.4): cos(m1 theta + m2) - m3.

    m1 = 1, m2 = m, m3 = 0 is ArcFace; (1, 0, m) is CosFace; (m, 0, 0) is a SphereFace-style
    multiplicative margin without psi.  Where m1 theta + m2 > pi the cosine would turn up
    again; there the target continues as ``cos theta - cos theta* - 1 - m3`` with
    theta* = (pi - m2) / m1: continuous at theta* and decreasing, so the target never
    increases with theta.
    """
    cos_theta = clip_cosine(cos_theta)
    theta = ops.arccos(cos_theta)
    with_margin = ops.cos(m1 * theta + m2) - m3
    theta_star = (math.pi - m2) / m1
    if theta_star >= math.pi:
        return with_margin
    extension = cos_theta - math.cos(theta_star) - 1.0 - m3
    return ops.where(theta > theta_star, extension, with_margin)


def chebyshev_cos_multiple(cos_theta, m):
    """cos(m theta) as the Chebyshev polynomial T_m(cos theta): no acos, smooth gradient."""
    previous, current = ops.ones_like(cos_theta), cos_theta
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2.0 * cos_theta * current - previous
    return current


def sphereface_psi(cos_theta, m):
    """SphereFace (Liu et al., CVPR 2017): psi(theta) = (-1)^k cos(m theta) - 2k.

    k = floor(m theta / pi), i.e. theta in [k pi/m, (k+1) pi/m], so psi decreases
    monotonically from 1 at theta = 0 to -2m + 1 at theta = pi.  k is counted from the
    thresholds cos(j pi / m), so no acos is needed; it carries no gradient.
    """
    m = int(m)
    cos_theta = clip_cosine(cos_theta)
    k = ops.zeros_like(cos_theta)
    for j in range(1, m):
        k = k + ops.cast(cos_theta <= math.cos(j * math.pi / m), cos_theta.dtype)
    sign = 1.0 - 2.0 * ops.mod(k, 2.0)
    return sign * chebyshev_cos_multiple(cos_theta, m) - 2.0 * k


def sphereface_lambda(iteration, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
    """SphereFace's annealing: lambda = max(lambda_min, base (1 + gamma iter)^(-power))."""
    iteration = ops.cast(iteration, "float32")
    return ops.maximum(lambda_min, base * ops.power(1.0 + gamma * iteration, -power))


def sphereface_target(cos_theta, m, lambda_value):
    """SphereFace's annealed target on the cosine scale: (lambda cos theta + psi) / (1 + lambda)."""
    lambda_value = ops.cast(lambda_value, cos_theta.dtype)
    return (lambda_value * cos_theta + sphereface_psi(cos_theta, m)) / (1.0 + lambda_value)


def curricular_negatives(cos_theta, target_y, t):
    """CurricularFace (Huang et al., CVPR 2020): a hard negative, cos theta_j > the positive's
    target, becomes cos theta_j (t + cos theta_j); easy negatives keep cos theta_j.
    ``target_y`` (B,) is the positive's margin value, ``t`` the adaptive (moving) parameter."""
    hard = cos_theta > target_y[:, None]
    return ops.where(hard, cos_theta * (t + cos_theta), cos_theta)


def moving_average(old, new, momentum):
    """(1 - momentum) old + momentum new (CurricularFace's t, AdaFace's mu and sigma: 0.01)."""
    return (1.0 - momentum) * old + momentum * new


def adaface_margin_scaler(norms, mean, std, h, eps=1e-3):
    """AdaFace's image-quality proxy z = clip(h (||x|| - mu) / (sigma + eps), -1, 1)."""
    return ops.clip(h * (norms - mean) / (std + eps), -1.0, 1.0)


def adaface_target(cos_theta, margin, z, eps=1e-3):
    """AdaFace (Kim et al., CVPR 2022): cos(clip(theta - m z, eps, pi - eps)) - (m + m z).

    z = -1 (low quality) gives ArcFace's cos(theta + m); z = 1 gives cos(theta - m) - 2m, a
    CosFace-like margin; ``z`` is (B,) and carries no gradient."""
    theta = ops.arccos(clip_cosine(cos_theta))
    theta_m = ops.clip(theta - margin * z, eps, math.pi - eps)
    return ops.cos(theta_m) - (margin + margin * z)


def magface_margin(norms, lower_norm=10.0, upper_norm=110.0, lower_margin=0.45, upper_margin=0.8):
    """MagFace (Meng et al., CVPR 2021): m(a), linear from l_m at a = l_a to u_m at a = u_a,
    a = ||x|| clipped to [l_a, u_a]."""
    a = ops.clip(norms, lower_norm, upper_norm)
    return (upper_margin - lower_margin) / (upper_norm - lower_norm) * (a - lower_norm) + lower_margin


def magface_regularizer(norms, lower_norm=10.0, upper_norm=110.0):
    """MagFace's g(a) = a / u_a^2 + 1 / a on a = ||x|| clipped to [l_a, u_a]; the loss adds lambda_g mean g."""
    a = ops.clip(norms, lower_norm, upper_norm)
    return a / (upper_norm * upper_norm) + 1.0 / a
