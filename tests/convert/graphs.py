"""ONNX graphs written the way PyTorch / MXNet export face models (NCHW, symmetric pads, BatchNorm
nodes or BatchNorm folded into convolution biases, PRelu, Flatten + Gemm, squeeze-excitation's
global mean, sigmoid and product), from a Keras backbone
whose weights and BatchNorm statistics are randomised: the test sources of the converter.

The graph follows the Keras model's dataflow, so residual blocks come out in the framework's own
order (InsightFace's IBasicBlock: bn1, conv1, bn2, prelu, conv2, bn3, downsample conv + bn, add).
"""

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def randomise(model, seed=0):
    """Random weights and BatchNorm statistics (so folding and epsilons matter); returns the model."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for variable in layer.weights:
            shape = tuple(variable.shape)
            if isinstance(layer, keras.layers.BatchNormalization) and "variance" in variable.path:
                value = rng.uniform(0.5, 1.5, shape)
            elif isinstance(layer, keras.layers.BatchNormalization) and "gamma" in variable.path:
                value = rng.uniform(0.7, 1.3, shape)
            elif isinstance(layer, keras.layers.PReLU):
                value = rng.uniform(0.05, 0.4, shape)
            elif len(shape) == 1:  # offsets and means small, so that the output follows the input
                value = rng.normal(0, 0.01, shape)
            else:
                depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
                fan_in = np.prod(shape[:2]) if depthwise else np.prod(shape[:-1])
                value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
            variable.assign(value.astype("float32"))
    return model


def keras_to_onnx(model, path, fold_batchnorm=False, source_epsilon=None, normalise=True, opset=17):
    """Write ``model`` (a functional backbone) as a PyTorch-style ONNX file at ``path``.

    ``fold_batchnorm``: BatchNorm after a convolution is folded into its weights and a bias (what
    torch.onnx does in eval mode); ``source_epsilon``: BatchNorm nodes get this epsilon, with their
    variance shifted so that they compute what the Keras layer computes; ``normalise``: the graph
    starts with Sub 127.5 and Mul 1/128 (SFace's layout) and takes raw 0..255 pixels.
    """
    height, width = model.input_shape[1:3]
    nodes, initializers = [], []
    names, pads, conv_of = {}, {}, {}

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def name_of(tensor):
        return names[id(tensor)]

    current = "data"
    if normalise:
        nodes.append(helper.make_node("Sub", ["data", constant("mean", [127.5])], ["centred"], name="minus_mean"))
        nodes.append(helper.make_node("Mul", ["centred", constant("scale", [1 / 128])], ["normalised"],
                                      name="times_scale"))
        current = "normalised"
    names[id(model.inputs[0])] = current
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        node = layer._inbound_nodes[0]
        inputs = [name_of(t) for t in node.input_tensors]
        out = layer.name
        names[id(layer.output)] = out
        if isinstance(layer, keras.layers.ZeroPadding2D):
            names[id(layer.output)] = inputs[0]
            pads[inputs[0]] = layer.padding[0][0]
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            kernel = np.asarray(layer.kernel)
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            weight = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(3, 2, 0, 1)
            pad = pads.get(inputs[0], 0) + getattr(layer, "symmetric_padding", 0)  # padded before or inside
            if layer.padding == "same":  # symmetric padding folded into a stride-1 convolution
                assert tuple(layer.strides) == (1, 1), f"{layer.name}: SAME padding of a strided convolution"
                pad = (kernel.shape[0] - 1) // 2
            sigmoid = getattr(layer.activation, "__name__", "linear") == "sigmoid"
            operands = [inputs[0], constant(f"{out}_weight", weight)]
            if layer.use_bias:
                operands.append(constant(f"{out}_bias", np.asarray(layer.bias)))
            nodes.append(helper.make_node(
                "Conv", operands, [f"{out}_linear" if sigmoid else out], name=out,
                kernel_shape=list(kernel.shape[:2]), strides=list(layer.strides), pads=[pad] * 4,
                group=weight.shape[0] if depthwise else 1))
            conv_of[out] = nodes[-1]
            if sigmoid:  # squeeze-excitation's gate
                nodes.append(helper.make_node("Sigmoid", [f"{out}_linear"], [out], name=f"{out}_sigmoid"))
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma = np.asarray(layer.gamma) if layer.scale else np.ones(layer.moving_mean.shape)
            beta, mean = np.asarray(layer.beta), np.asarray(layer.moving_mean)
            variance = np.asarray(layer.moving_variance)
            if fold_batchnorm and inputs[0] in conv_of:
                conv = conv_of[inputs[0]]
                factor = gamma / np.sqrt(variance + layer.epsilon)
                weight_name = conv.input[1]
                init = [i for i in initializers if i.name == weight_name][0]
                folded = numpy_helper.to_array(init) * factor[:, None, None, None]
                initializers.remove(init)
                constant(weight_name, folded)
                conv.input.append(constant(f"{inputs[0]}_bias", beta - mean * factor))
                names[id(layer.output)] = inputs[0]
                continue
            epsilon = layer.epsilon if source_epsilon is None else source_epsilon
            nodes.append(helper.make_node(
                "BatchNormalization", [inputs[0], constant(f"{out}_gamma", gamma), constant(f"{out}_beta", beta),
                                       constant(f"{out}_mean", mean),
                                       constant(f"{out}_var", variance + layer.epsilon - epsilon)],
                [out], name=out, epsilon=float(epsilon)))
        elif isinstance(layer, keras.layers.PReLU):
            slope = np.asarray(layer.alpha).reshape(-1, 1, 1)
            nodes.append(helper.make_node("PRelu", [inputs[0], constant(f"{out}_slope", slope)], [out], name=out))
        elif isinstance(layer, keras.layers.Add):
            nodes.append(helper.make_node("Add", inputs, [out], name=out))
        elif isinstance(layer, keras.layers.Multiply):
            nodes.append(helper.make_node("Mul", inputs, [out], name=out))
        elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
            assert layer.keepdims, f"{layer.name}: a global mean that drops the spatial axes"
            nodes.append(helper.make_node("GlobalAveragePool", inputs, [out], name=out))
        elif isinstance(layer, keras.layers.Flatten):
            nodes.append(helper.make_node("Flatten", inputs, [out], name=out, axis=1))
        elif isinstance(layer, keras.layers.Dense):
            feature_map = layer._inbound_nodes[0].input_tensors[0]._keras_history[0].input.shape
            kernel = np.asarray(layer.kernel)
            if len(feature_map) == 4:  # rows of Keras' HWC flatten -> PyTorch's CHW flatten
                h, w, c = feature_map[1:]
                kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
            nodes.append(helper.make_node("Gemm", [inputs[0], constant(f"{out}_weight", kernel.T),
                                                   constant(f"{out}_bias", np.asarray(layer.bias))],
                                          [out], name=out, transB=1))
        elif isinstance(layer, keras.layers.Dropout):
            nodes.append(helper.make_node("Dropout", inputs, [out], name=out))
        elif isinstance(layer, keras.layers.Activation):
            nodes.append(helper.make_node("Identity", inputs, [out], name=out))
        else:
            raise NotImplementedError(type(layer).__name__)
    output = name_of(model.outputs[0])
    graph = helper.make_graph(
        nodes, "face_model", [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", model.output_shape[-1]])], initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))
    return path
