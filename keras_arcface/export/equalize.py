"""Cross-layer equalisation of activation ranges before int8 quantization.

A BatchNorm followed, through channel-wise positively homogeneous layers only (PReLU, ReLU, zero
padding: f(s x) = s f(x) for s > 0), by a convolution is rescaled without changing the function:
the BatchNorm's output channel c is multiplied by s_c (gamma_c and beta_c times s_c) and the
convolution's input channel c divided by s_c (its kernel[..., c, :]).  This is the rescaling of
Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction" (ICCV 2019),
section 4, with s_c chosen from measured activation ranges instead of weight ranges:
s_c = mean(r) / r_c, r_c the largest |activation| of channel c entering the convolution on the
calibration images, so every channel of the tensor that int8 quantizes per tensor spans the same
range.  A model whose channels span ranges 1,000x apart (Intel's face-reidentification-retail-0095
before its global depthwise conv: 0.23 to 210) loses its small channels to one int8 scale otherwise.
"""

import keras
import numpy as np

#: Layers through which a per-channel positive scale passes unchanged: f(s x) = s f(x), s > 0.
HOMOGENEOUS_LAYERS = (keras.layers.PReLU, keras.layers.ReLU, keras.layers.ZeroPadding2D)
#: Largest factor a channel is scaled by, either way (a dead channel is not blown up).
MAX_SCALE = 1e3


def _producers(layer):
    """The layers whose outputs feed ``layer`` (its first call)."""
    node = layer._inbound_nodes[0]
    return [tensor._keras_history.operation for tensor in node.input_tensors]


def equalizable_chains(model):
    """[(batch_norm, homogeneous layers in between, convolution)]: every chain that can be rescaled.

    Each layer of a chain but the convolution has the next one as its only consumer, the BatchNorm
    has a learnt scale, and the convolution is a DepthwiseConv2D or an ungrouped Conv2D."""
    consumers = {}
    for layer in model.layers:
        if layer._inbound_nodes:
            for producer in _producers(layer):
                consumers.setdefault(id(producer), []).append(layer)
    chains = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or not (layer.scale and layer.center) \
                or layer.axis not in (-1, 3):
            continue
        between, current = [], layer
        while len(consumers.get(id(current), [])) == 1:
            current = consumers[id(current)][0]
            if isinstance(current, HOMOGENEOUS_LAYERS):
                between.append(current)
                continue
            if isinstance(current, keras.layers.DepthwiseConv2D) or (
                    isinstance(current, keras.layers.Conv2D) and current.groups == 1):
                chains.append((layer, between, current))
            break
    return chains


def channel_ranges(model, tensors_of, images, batch_size=32):
    """Per-channel max |activation| of each layer in ``tensors_of`` on ``images`` (a list of arrays)."""
    probe = keras.Model(model.input, [layer.output for layer in tensors_of])
    ranges = [np.zeros(layer.output.shape[-1]) for layer in tensors_of]
    for start in range(0, len(images), batch_size):
        outputs = probe(np.asarray(images[start:start + batch_size], np.float32), training=False)
        for i, output in enumerate(outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            values = np.abs(keras.ops.convert_to_numpy(output)).reshape(-1, ranges[i].shape[0])
            ranges[i] = np.maximum(ranges[i], values.max(axis=0))
    return ranges


def equalize(model, images):
    """Rescale every chain of :func:`equalizable_chains` in place (the function is unchanged up to
    float rounding) so that the channels entering each convolution span one range on ``images``
    (preprocessed float32 batches, the int8 calibration set).  Returns the number of chains."""
    chains = equalizable_chains(model)
    if not chains:
        return 0
    ranges = channel_ranges(model, [between[-1] if between else norm for norm, between, _ in chains], images)
    for (norm, _, convolution), observed in zip(chains, ranges):
        live = observed[observed > 0]
        if live.size == 0:
            continue
        scale = np.clip(live.mean() / np.maximum(observed, live.mean() / MAX_SCALE), 1 / MAX_SCALE, MAX_SCALE)
        gamma, beta, *statistics = norm.get_weights()
        norm.set_weights([gamma * scale, beta * scale, *statistics])
        kernel, *bias = convolution.get_weights()
        convolution.set_weights([kernel / scale[None, None, :, None], *bias])
    return len(chains)


def equalized_copy(model, images):
    """A copy of ``model`` (its weights copied) equalised by :func:`equalize`; ``model`` is untouched."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    equalize(copy, images)
    return copy
