"""Put a source's weighted layers, in graph order, onto a Keras backbone's weighted layers.

The walk pairs each Keras Conv2D / DepthwiseConv2D / BatchNormalization / PReLU / Dense with the
next source layer and checks its kind, shapes and strides; the first mismatch is an error naming
both layers.  A Keras convolution with a bias of its own takes the source's bias as it is.  Two
rewrites keep the arithmetic exact:

* a BatchNorm folded into the convolution before it (a convolution bias, no BatchNorm in the
  source) becomes a BatchNorm with gamma 1, mean 0, variance 1 - epsilon and beta = the bias;
* a source BatchNorm with another epsilon keeps gamma / sqrt(variance + epsilon) exactly by
  storing variance + epsilon_source - epsilon_keras (and a bias before it moves into the mean).

A dense layer fed by a flattened NCHW map (ONNX) has its rows reordered to Keras' HWC flatten.
"""

import keras
import numpy as np

from keras_arcface.convert.sources import ConversionError

WEIGHTED = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.BatchNormalization,
            keras.layers.PReLU, keras.layers.Dense)


def weighted_layers(model):
    """The Conv2D, DepthwiseConv2D, BatchNormalization, PReLU and Dense layers of a functional
    ``model`` in dataflow post-order: from the output back, each layer after everything it reads,
    a merge's inputs in their order.  The ONNX reader orders its nodes the same way, so the two
    lists line up whatever order each framework created or stored the branches of a block in."""
    order, seen = [], set()

    def visit(tensor):
        layer, node_index, _ = tensor._keras_history
        if id(layer) in seen:
            return
        seen.add(id(layer))
        for parent in layer._inbound_nodes[node_index].input_tensors:
            visit(parent)
        if isinstance(layer, keras.Model):
            order.extend(weighted_layers(layer))
        elif isinstance(layer, WEIGHTED):
            order.append(layer)

    for output in model.outputs:
        visit(output)
    return order


def _kind(layer):
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise"
    if isinstance(layer, keras.layers.Conv2D):
        return "conv"
    if isinstance(layer, keras.layers.BatchNormalization):
        return "batch_norm"
    if isinstance(layer, keras.layers.PReLU):
        return "prelu"
    return "dense"


def _mismatch(layer, want, source):
    return ConversionError(f"the source does not fit the backbone at Keras layer {layer.name!r} "
                           f"({_kind(layer)}, {want}): the source's next layer is "
                           f"{source.describe() if source is not None else 'missing (the source has fewer layers)'}")


def _check_shape(layer, name, want, got, source):
    if tuple(want) != tuple(np.shape(got)):
        raise _mismatch(layer, f"{name} {tuple(want)}", source)


def assign_weights(model, source_layers):
    """Copy ``source_layers`` onto ``model``'s weighted layers; raises :class:`ConversionError` at the
    first layer whose kind, shape or stride differs, or when either side has layers left over."""
    queue = list(source_layers)
    position = 0
    pending_bias = None  # a convolution bias waiting for the Keras BatchNorm it was folded from
    pending_output = None  # the tensor that convolution writes
    for layer in weighted_layers(model):
        kind = _kind(layer)
        source = queue[position] if position < len(queue) else None
        if kind in ("conv", "depthwise"):
            if pending_bias is not None:
                raise _mismatch(layer, "after a convolution with a bias the backbone needs a BatchNorm", source)
            want = tuple(layer.kernel.shape)
            if source is None or source.kind != kind:
                raise _mismatch(layer, f"kernel {want}", source)
            _check_shape(layer, "kernel", want, source.weights["kernel"], source)
            spatial = layer.output.shape[1:3]
            if tuple(spatial) != (1, 1) and tuple(layer.strides) != tuple(source.strides):
                raise _mismatch(layer, f"strides {tuple(layer.strides)}", source)
            layer.kernel.assign(source.weights["kernel"].astype("float32"))
            if layer.use_bias:  # the Keras convolution has a bias of its own (squeeze-excitation's)
                bias = source.weights.get("bias")
                layer.bias.assign(np.zeros(layer.bias.shape, "float32") if bias is None else
                                  np.asarray(bias, "float32").reshape(layer.bias.shape))
            else:
                pending_bias, pending_output = source.weights.get("bias"), source.writes
            position += 1
        elif kind == "batch_norm":
            # the source's next BatchNorm is this one unless a convolution whose BatchNorm was folded
            # into it is waiting, and that BatchNorm reads something else (it starts the next branch)
            own = source is not None and source.kind == "batch_norm" and (
                pending_output is None or source.reads == pending_output)
            _assign_batch_norm(layer, source if own else None, pending_bias, next_source=source)
            position += own
            pending_bias = pending_output = None
        elif kind == "prelu":
            if pending_bias is not None:
                raise _mismatch(layer, "a BatchNorm before the PReLU", source)
            want = tuple(layer.alpha.shape)
            if source is None or source.kind != "prelu" or source.weights["alpha"].size != int(np.prod(want)):
                raise _mismatch(layer, f"alpha {want}", source)
            layer.alpha.assign(source.weights["alpha"].reshape(want).astype("float32"))
            position += 1
        else:
            want = tuple(layer.kernel.shape)
            if source is None or source.kind != "dense":
                raise _mismatch(layer, f"kernel {want}", source)
            kernel = source.weights["kernel"]
            _check_shape(layer, "kernel", want, kernel, source)
            feature_map = _flattened_map(model, layer)
            if source.layout == "NCHW" and feature_map is not None and np.prod(feature_map[:2]) > 1:
                height, width, channels = feature_map
                kernel = kernel.reshape(channels, height, width, -1).transpose(1, 2, 0, 3).reshape(want)
            layer.kernel.assign(kernel.astype("float32"))
            if layer.use_bias:
                layer.bias.assign(np.asarray(source.weights.get("bias", np.zeros(want[1])), "float32"))
                pending_bias = None
            else:
                pending_bias, pending_output = source.weights.get("bias"), source.writes
            position += 1
    if pending_bias is not None:
        raise ConversionError("the source's last layer has a bias that the backbone has no place for")
    if position < len(queue):
        raise ConversionError(f"the source has {len(queue) - position} more weighted layer(s) than the backbone, "
                              f"starting at {queue[position].describe()}")


def _assign_batch_norm(layer, source, pending_bias, next_source=None):
    channels = int(layer.moving_mean.shape[0])
    epsilon = float(layer.epsilon)
    if source is not None and source.kind == "batch_norm":
        weights = source.weights
        _check_shape(layer, "channels", (channels,), weights["mean"], source)
        gamma, beta = weights["gamma"], weights["beta"]
        mean = weights["mean"] - (pending_bias if pending_bias is not None else 0.0)
        variance = weights["variance"] + weights["epsilon"] - epsilon
        if np.any(variance < 0):
            raise ConversionError(f"{source.name}: its epsilon {weights['epsilon']} cannot be carried by Keras "
                                  f"layer {layer.name!r} (epsilon {epsilon}) for a near-zero variance")
    elif pending_bias is not None:  # BatchNorm folded into the convolution before it
        if np.shape(pending_bias) != (channels,):
            raise _mismatch(layer, f"channels ({channels},)", next_source)
        gamma, beta = np.ones(channels), pending_bias
        mean, variance = np.zeros(channels), np.full(channels, 1.0 - epsilon)
    else:
        raise _mismatch(layer, f"channels ({channels},)", next_source)
    if layer.scale:
        layer.gamma.assign(np.asarray(gamma, "float32"))
    elif not np.allclose(gamma, 1.0):
        raise ConversionError(f"Keras layer {layer.name!r} has no scale, but the source's "
                              f"{source.name if source else 'layer'} scales by gamma != 1")
    if layer.center:
        layer.beta.assign(np.asarray(beta, "float32"))
    layer.moving_mean.assign(np.asarray(mean, "float32"))
    layer.moving_variance.assign(np.asarray(variance, "float32"))


def _flattened_map(model, dense):
    """(H, W, C) of the map a Flatten feeds into ``dense``, when there is one."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Flatten) and layer.output.shape[-1] == dense.kernel.shape[0]:
            shape = layer.input.shape
            if len(shape) == 4:
                return tuple(int(d) for d in shape[1:])
    return None
