"""Shared test helpers: backend-neutral gradients and the float64 NumPy reference heads."""

import math

import keras
import numpy as np
from keras import ops


def keras_base(cls):
    """The Keras layer class one of ours extends (Conv2D, DepthwiseConv2D, BatchNormalization, PReLU):
    its reference, and the class a ``.weights.h5`` saved before knows."""
    return next(base for base in cls.__mro__ if base.__module__.startswith("keras."))


def value_and_grads(fn, *arrays):
    """fn(*tensors) -> scalar; returns (value, [d value / d array]) on the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
        return np.asarray(value), [np.asarray(g) for g in tape.gradient(value, tensors)]
    if backend == "jax":
        import jax

        value, grads = jax.value_and_grad(lambda args: fn(*args))(list(arrays))
        return np.asarray(value), [np.asarray(g) for g in grads]
    raise NotImplementedError(backend)


def head_loss_fn(head, labels, training=False):
    """(embeddings, kernel) -> mean sparse CE of the head's margin logits, stateless."""

    def loss(embeddings, kernel, *rest):
        trainable = [kernel, *rest]
        logits, _ = head.stateless_call(trainable, [v.value for v in head.non_trainable_variables],
                                        [embeddings, labels], training=training)
        return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    return loss


# ---- the float64 reference, written from the papers' formulas with arccos --------------------

def reference_target(name, theta, params):
    """Target value on the cosine scale, from theta, float64."""
    cos = np.cos(theta)
    if name == "normface":
        return cos
    if name == "cosface":
        return cos - params["margin"]
    if name == "arcface":
        m = params["margin"]
        if params.get("easy_margin"):
            return np.where(cos > 0, np.cos(theta + m), cos)
        return np.where(theta + m <= math.pi, np.cos(theta + m), cos - m * math.sin(m))
    if name == "combined":
        m1, m2, m3 = params["m1"], params["m2"], params["m3"]
        theta_star = (math.pi - m2) / m1
        return np.where(theta <= theta_star, np.cos(m1 * theta + m2) - m3,
                        cos - math.cos(theta_star) - 1 - m3)
    if name == "sphereface":
        m = params["margin"]
        k = np.minimum(np.floor(m * theta / math.pi), m - 1)
        psi = (-1.0) ** k * np.cos(m * theta) - 2 * k
        lam = params["lambda"]
        return (lam * cos + psi) / (1 + lam)
    raise KeyError(name)


def _per_sample_target(name, theta, cos, x_norm, params):
    """Targets whose margin depends on the sample (AdaFace, MagFace), float64."""
    if name == "adaface":
        norms = np.clip(params.get("norms", x_norm), 0.001, 100)  # detached in the layer
        m, h, eps = params["margin"], params["h"], params["eps"]
        z = np.clip(h * (norms - params["batch_mean"]) / (params["batch_std"] + eps), -1, 1)
        return np.cos(np.clip(theta - m * z, eps, math.pi - eps)) - (m + m * z)
    if name == "magface":
        a = np.clip(x_norm, params["lower_norm"], params["upper_norm"])
        m = ((params["upper_margin"] - params["lower_margin"]) / (params["upper_norm"] - params["lower_norm"])
             * (a - params["lower_norm"]) + params["lower_margin"])
        return np.where(theta + m <= math.pi, np.cos(theta + m), cos - m * np.sin(m))
    raise KeyError(name)


def reference_logits(name, params, x, kernel, labels, bias=None):
    """The head's logits in float64 from the formulas; labels None -> margin-free."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    if name == "softmax":
        return x @ kernel + (0 if bias is None else bias)
    x_norm = np.linalg.norm(x, axis=1, keepdims=True)
    cos = (x / x_norm) @ (kernel / np.linalg.norm(kernel, axis=0, keepdims=True))
    if name == "subcenter":  # column j K + k is sub-centre k of class j; the nearest one counts
        cos = cos.reshape(len(x), -1, params["subcenters"]).max(axis=2)
    scale = x_norm if (name == "sphereface" and params.get("scale") is None) else params["scale"]
    if labels is None:
        return scale * cos
    rows = np.arange(len(labels))
    theta_y = np.arccos(np.clip(cos[rows, labels], -1, 1))
    target = cos.copy()
    if name in ("adaface", "magface"):
        target[rows, labels] = _per_sample_target(name, theta_y, cos[rows, labels], x_norm[:, 0], params)
    elif name == "curricular":
        positive = reference_target("arcface", theta_y, params)
        target = np.where(cos > positive[:, None], cos * (params["t"] + cos), cos)
        target[rows, labels] = positive
    else:
        target[rows, labels] = reference_target("arcface" if name == "subcenter" else name, theta_y, params)
    return scale * target


def reference_loss(name, params, x, kernel, labels, bias=None):
    logits = reference_logits(name, params, x, kernel, labels, bias)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


def finite_difference(fn, array, step=1e-6):
    grad = np.zeros_like(array)
    flat = array.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + step
        up = fn()
        flat[i] = saved - step
        down = fn()
        flat[i] = saved
        grad.reshape(-1)[i] = (up - down) / (2 * step)
    return grad


def embeddings_at_angles(kernel, labels, thetas, rng, norm=3.0):
    """Embeddings at angle theta_i from the centre of class labels_i (any dimension >= 2)."""
    centres = (kernel / np.linalg.norm(kernel, axis=0, keepdims=True)).T[labels]
    noise = rng.standard_normal(centres.shape)
    noise -= (noise * centres).sum(axis=1, keepdims=True) * centres
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    thetas = np.asarray(thetas, np.float64)[:, None]
    return norm * (np.cos(thetas) * centres + np.sin(thetas) * noise)
