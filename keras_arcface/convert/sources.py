"""Read the weighted layers of an .onnx, .tflite or OpenVINO IR face model, in graph order, in Keras layout.

Each reader returns ``(layers, spec_changes)``: a list of :class:`SourceLayer` (convolutions,
depthwise convolutions, BatchNorm, PReLU and dense layers, each with its weights already in
Keras' layout except a dense layer fed by a flattened NCHW map, which the mapper reorders), and
the scalar preprocessing the graph applies to its input (ONNX ``Sub``/``Mul`` by constants before
the first convolution), so that the Keras model can take it over.

Weightless ops that do not change what the weights compute (Dropout, Flatten, Reshape, Add,
Identity) are skipped; BatchNorm folded into a convolution shows as a convolution bias, and PReLU
written as ``relu(x) + c (x - |x|)`` (TFLite) is read back as a PReLU with slope 2c.
"""

import dataclasses
import pathlib

import numpy as np

from keras_arcface.errors import InputError


class ConversionError(InputError):
    """A source file that cannot be read, or whose layers do not fit the chosen backbone."""


@dataclasses.dataclass
class SourceLayer:
    kind: str     # "conv", "depthwise", "batch_norm", "prelu", "dense"
    name: str     # the source's node / tensor name
    weights: dict  # conv: kernel (kh, kw, in, out) [bias]; depthwise: kernel (kh, kw, C, 1) [bias];
    #                batch_norm: gamma, beta, mean, variance, epsilon; prelu: alpha (C,); dense: kernel (in, out) [bias]
    strides: tuple = (1, 1)
    layout: str = "NHWC"  # dense only: the layout of the map flattened into it
    reads: str = ""       # the tensor it reads and the one it writes (tells a BatchNorm that follows a
    writes: str = ""      # convolution from one that starts the next branch)

    def describe(self):
        shapes = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in self.weights.items() if k != "epsilon")
        return f"{self.kind} {self.name!r} ({shapes})"


def read_source(path):
    """(layers, spec_changes) of a .onnx, .tflite or OpenVINO IR .xml file; :class:`ConversionError` for
    anything else."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    suffix = path.suffix.lower()
    readers = {".onnx": (read_onnx, "an ONNX"), ".tflite": (read_tflite, "a TFLite"),
               ".xml": (read_openvino, "an OpenVINO IR")}
    if suffix not in readers:
        raise ConversionError(f"{path}: expected a .onnx, .tflite or OpenVINO IR .xml file")
    reader, kind = readers[suffix]
    try:
        return reader(path)
    except ConversionError:
        raise
    except Exception as error:  # the parsers raise their own types for corrupt files
        detail = " ".join(str(error).split())[:200]
        raise ConversionError(f"cannot read {path} as {kind} model ({type(error).__name__}: {detail}); the file may "
                              "be truncated or of another kind") from None


# -- ONNX ----------------------------------------------------------------------------------------
_ONNX_PASSTHROUGH = {"Dropout", "Flatten", "Reshape", "Add", "Identity", "Constant", "Shape", "Gather",
                     "Unsqueeze", "Concat", "Squeeze"}


def read_onnx(path):
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises DecodeError, ValidationError, ...
        raise ConversionError(f"{path}: not a readable ONNX model ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from None
    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attribute.t)
    layers, spec = [], {"mean": 0.0, "std": 1.0}
    seen_weights = False
    for node in _postorder(graph):
        op = node.op_type
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if op == "Conv":
            seen_weights = True
            kernel = constants.get(node.input[1])
            if kernel is None:
                raise ConversionError(f"{path}: Conv {node.name!r} takes its weights from a computed tensor")
            group = int(attrs.get("group", 1))
            weights = {}
            if group == 1:
                kind, weights["kernel"] = "conv", kernel.transpose(2, 3, 1, 0)
            elif group == kernel.shape[0] and kernel.shape[1] == 1:
                kind, weights["kernel"] = "depthwise", kernel.transpose(2, 3, 0, 1)
            else:
                raise ConversionError(f"{path}: Conv {node.name!r} is a grouped convolution (group {group}) "
                                      "that no backbone here has")
            if len(node.input) > 2 and node.input[2]:
                weights["bias"] = constants[node.input[2]]
            layers.append(SourceLayer(kind, node.name, weights, tuple(attrs.get("strides", (1, 1))),
                                      reads=node.input[0], writes=node.output[0]))
        elif op == "BatchNormalization":
            seen_weights = True
            gamma, beta, mean, variance = (constants[name] for name in node.input[1:5])
            layers.append(SourceLayer("batch_norm", node.name, {
                "gamma": gamma, "beta": beta, "mean": mean, "variance": variance,
                "epsilon": float(attrs.get("epsilon", 1e-5))}, reads=node.input[0], writes=node.output[0]))
        elif op == "PRelu":
            seen_weights = True
            slope = constants.get(node.input[1])
            if slope is None:
                raise ConversionError(f"{path}: PRelu {node.name!r} has a computed slope")
            layers.append(SourceLayer("prelu", node.name, {"alpha": np.asarray(slope).reshape(-1)}))
        elif op in ("Gemm", "MatMul"):
            seen_weights = True
            weight = constants.get(node.input[1])
            if weight is None:
                raise ConversionError(f"{path}: {op} {node.name!r} takes its weights from a computed tensor")
            kernel = weight.T if (op == "Gemm" and attrs.get("transB", 0)) else weight
            if op == "Gemm":
                kernel = kernel * float(attrs.get("alpha", 1.0))
            weights = {"kernel": kernel}
            if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                weights["bias"] = constants[node.input[2]] * float(attrs.get("beta", 1.0))
            layers.append(SourceLayer("dense", node.name, weights, layout="NCHW", reads=node.input[0],
                                      writes=node.output[0]))
        elif op in ("Sub", "Mul", "Div", "Add") and not seen_weights and _scalar(constants, node):
            value = float(_scalar(constants, node))
            if op == "Sub":
                spec["mean"] += value * spec["std"]
            elif op == "Add":
                spec["mean"] -= value * spec["std"]
            elif op == "Mul":
                spec["std"] /= value
            else:
                spec["std"] *= value
        elif op in _ONNX_PASSTHROUGH:
            continue
        else:
            raise ConversionError(f"{path}: unsupported op {op} ({node.name!r}); the converter reads Conv, "
                                  "BatchNormalization, PRelu, Gemm/MatMul and scalar input normalisation")
    spec_changes = {} if spec == {"mean": 0.0, "std": 1.0} else spec
    return layers, spec_changes


def _postorder(graph):
    """The graph's nodes in dataflow post-order from its outputs (each after its inputs, inputs in
    order): the order :func:`keras_arcface.convert.mapping.weighted_layers` gives the Keras side."""
    producer = {output: node for node in graph.node for output in node.output}
    order, seen = [], set()
    stack = [(producer[o.name], False) for o in reversed(graph.output) if o.name in producer]
    while stack:  # iterative: deep networks would exceed Python's recursion limit
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for name in reversed(node.input):
            if name in producer and id(producer[name]) not in seen:
                stack.append((producer[name], False))
    return order


def _scalar(constants, node):
    """The scalar constant operand of a binary node, or None."""
    if len(node.input) != 2 or node.input[1] not in constants:
        return None
    value = np.asarray(constants[node.input[1]])
    return value.reshape(-1)[0] if value.size == 1 else None


# -- TFLite --------------------------------------------------------------------------------------
def read_tflite(path):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        interpreter = Interpreter(model_path=str(path),
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    except Exception as error:  # LiteRT raises ValueError / RuntimeError for corrupt files
        raise ConversionError(f"{path}: not a readable TFLite model ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from None
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # the only public-enough view of the graph in LiteRT
    produced_by = {}
    for op in ops:
        for output in op["outputs"]:
            produced_by[output] = op

    def constant(index):
        if index < 0 or index in produced_by or index in {d["index"] for d in interpreter.get_input_details()}:
            return None
        try:
            return np.array(interpreter.get_tensor(index))
        except ValueError:
            return None

    layers = []
    for op in ops:
        name, inputs = op["op_name"], [i for i in op["inputs"]]
        out_name = details[op["outputs"][0]]["name"] if op["outputs"] else name
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            kernel = constant(inputs[1])
            if kernel is None:
                raise ConversionError(f"{path}: {name} {out_name!r} has no constant weights (a quantised file?)")
            kernel = kernel.transpose(1, 2, 3, 0)  # (out, kh, kw, in) or (1, kh, kw, C) -> (kh, kw, in|C, out|1)
            weights = {"kernel": kernel}
            bias = constant(inputs[2]) if len(inputs) > 2 else None
            if bias is not None:
                weights["bias"] = bias
            layers.append(SourceLayer("conv" if name == "CONV_2D" else "depthwise", out_name, weights,
                                      _tflite_strides(op, details), reads=str(inputs[0]), writes=str(op["outputs"][0])))
        elif name == "MUL":
            # PReLU as relu(x) + c * (x - |x|): the MUL of a constant c with SUB(x, ABS(x))
            slope, other = (constant(inputs[0]), inputs[1]) if constant(inputs[0]) is not None else (
                constant(inputs[1]), inputs[0])
            source = produced_by.get(other)
            if slope is not None and source is not None and source["op_name"] == "SUB" and any(
                    produced_by.get(i, {}).get("op_name") == "ABS" for i in source["inputs"]):
                layers.append(SourceLayer("prelu", out_name, {"alpha": 2.0 * slope.reshape(-1)}))
            else:
                raise ConversionError(f"{path}: a MUL ({out_name!r}) that is not part of a PReLU")
        elif name == "PRELU":
            layers.append(SourceLayer("prelu", out_name, {"alpha": constant(inputs[1]).reshape(-1)}))
        elif name == "FULLY_CONNECTED":
            weights = {"kernel": constant(inputs[1]).T}
            bias = constant(inputs[2]) if len(inputs) > 2 else None
            if bias is not None:
                weights["bias"] = bias
            layers.append(SourceLayer("dense", out_name, weights))
        elif name in ("RELU", "ABS", "SUB", "ADD", "RESHAPE", "DELEGATE", "DEQUANTIZE", "SHAPE", "STRIDED_SLICE",
                      "PACK", "CONCATENATION", "GATHER", "SQUEEZE"):
            continue
        else:
            raise ConversionError(f"{path}: unsupported TFLite op {name} ({out_name!r})")
    return layers, {}


def _tflite_strides(op, details):
    """Strides from the input and output sizes (LiteRT does not expose the op's options)."""
    image = [i for i in op["inputs"] if i >= 0][0]
    in_h, in_w = details[image]["shape"][1:3]
    out_h, out_w = details[op["outputs"][0]]["shape"][1:3]
    return (max(1, int(round(in_h / out_h))), max(1, int(round(in_w / out_w))))


# -- OpenVINO IR ---------------------------------------------------------------------------------
_OPENVINO_PASSTHROUGH = {"Parameter", "Result", "Constant", "Convert", "AvgPool", "ReduceMean", "Sigmoid",
                         "Reshape", "Squeeze", "Unsqueeze", "ShapeOf", "Concat", "Gather", "Flatten"}


def read_openvino(path):
    """An OpenVINO IR (``model.xml`` with ``model.bin`` beside it), parsed by the ``openvino`` package.

    Intel's IRs fold BatchNorm into the convolutions, so a convolution's bias is the ``Add`` of a
    constant that follows it; the image's per-channel ``Multiply`` / ``Add`` by constants before the
    first convolution (a folded input BatchNorm) comes back as a BatchNorm layer with mean 0 and
    variance 1 (scalars fold into the input spec instead, as ONNX's do).  Compressed weights (fp16
    constants behind ``Convert``) are cast to float32, which is exact.  Squeeze-excitation's ops
    (``AvgPool``, ``Sigmoid``, the ``Multiply`` of two computed tensors) and residual ``Add``s carry
    no weights and are skipped.
    """
    from keras_arcface.runtime.embedder import import_openvino

    openvino = import_openvino(path, ConversionError)
    weights_file = path.with_suffix(".bin")
    if not weights_file.is_file():
        raise ConversionError(f"{path}: its weights file {weights_file.name} is missing (an IR is an .xml and a .bin)")
    try:
        model = openvino.Core().read_model(str(path))
    except Exception as error:  # openvino raises RuntimeError for a truncated .bin or a malformed .xml
        detail = next((line for line in str(error).splitlines() if line.strip() and "Exception from" not in line
                       and "Check '" not in line), str(error).splitlines()[-1] if str(error) else "")
        raise ConversionError(f"{path}: not a readable OpenVINO IR ({detail.strip()}); {weights_file.name} may be "
                              "truncated or belong to another model") from None
    layers, affine = [], {"scale": None, "shift": None, "name": ""}
    spec = {"mean": 0.0, "std": 1.0}

    def flush_affine():
        """The image's scale and shift, once the first weighted op shows they are over."""
        scale, shift = affine["scale"], affine["shift"]
        if scale is None and shift is None:
            return
        scale = np.ones(1, np.float32) if scale is None else scale
        shift = np.zeros(1, np.float32) if shift is None else shift
        if scale.size == 1 and shift.size == 1:  # (x * s + b) = (x - mean) / std
            spec["std"] = float(spec["std"] / scale[0])
            spec["mean"] = float(-shift[0] / scale[0])
        else:
            channels = max(scale.size, shift.size)
            layers.append(SourceLayer("batch_norm", affine["name"], {
                "gamma": np.broadcast_to(scale, (channels,)).astype(np.float32),
                "beta": np.broadcast_to(shift, (channels,)).astype(np.float32),
                "mean": np.zeros(channels, np.float32), "variance": np.ones(channels, np.float32),
                "epsilon": 0.0}))
        affine["scale"] = affine["shift"] = None

    for node in _openvino_postorder(model):
        op, name = node.get_type_name(), node.get_friendly_name()
        if op in _OPENVINO_PASSTHROUGH:  # weightless: its inputs' constants are not read
            continue
        inputs = [value.get_node() for value in node.input_values()]
        constants = [_openvino_constant(source) for source in inputs]
        if op in ("Convolution", "GroupConvolution"):
            flush_affine()
            kernel = constants[1]
            if kernel is None:
                raise ConversionError(f"{path}: {op} {name!r} takes its weights from a computed tensor")
            if op == "Convolution":
                kind, kernel = "conv", kernel.transpose(2, 3, 1, 0)  # (O, I, kh, kw) -> (kh, kw, I, O)
            elif kernel.shape[1:3] == (1, 1):  # (groups, out / group, in / group, kh, kw), one channel a group
                kind, kernel = "depthwise", kernel[:, 0, 0].transpose(1, 2, 0)[..., None]
            else:
                raise ConversionError(f"{path}: GroupConvolution {name!r} has {kernel.shape[2]} input channels a "
                                      "group, a grouped convolution that no backbone here has")
            layers.append(SourceLayer(kind, name, {"kernel": kernel}, tuple(node.get_attributes()["strides"]),
                                      reads=inputs[0].get_name(), writes=node.get_name()))
        elif op == "MatMul":
            flush_affine()
            if constants[1] is None:
                raise ConversionError(f"{path}: MatMul {name!r} takes its weights from a computed tensor")
            kernel = constants[1].T if node.get_attributes().get("transpose_b") else constants[1]
            layers.append(SourceLayer("dense", name, {"kernel": kernel}, reads=inputs[0].get_name(),
                                      writes=node.get_name()))
        elif op == "PRelu":
            if constants[1] is None:
                raise ConversionError(f"{path}: PRelu {name!r} has a computed slope")
            layers.append(SourceLayer("prelu", name, {"alpha": constants[1].reshape(-1)}))
        elif op == "BatchNormInference":  # (data, gamma, beta, mean, variance)
            flush_affine()
            gamma, beta, mean, variance = constants[1:5]
            layers.append(SourceLayer("batch_norm", name, {
                "gamma": gamma, "beta": beta, "mean": mean, "variance": variance,
                "epsilon": float(node.get_attributes()["epsilon"])}, reads=inputs[0].get_name(),
                writes=node.get_name()))
        elif op in ("Multiply", "Add") and any(c is not None for c in constants):
            value = next(c for c in constants if c is not None).reshape(-1)
            data = next(source for source, c in zip(inputs, constants) if c is None)
            last = layers[-1] if layers else None
            if op == "Add" and last is not None and last.writes == data.get_name() and "bias" not in last.weights \
                    and last.kind in ("conv", "depthwise", "dense"):
                last.weights["bias"] = value
                last.writes = node.get_name()
            elif not layers and op == "Multiply" and affine["shift"] is None and affine["scale"] is None:
                affine.update(scale=value, name=name)
            elif not layers and op == "Add" and affine["shift"] is None:
                affine.update(shift=value, name=affine["name"] or name)
            else:
                raise ConversionError(f"{path}: {op} {name!r} by a constant that is neither a convolution's bias "
                                      "nor the image's scale and shift")
        elif op in ("Multiply", "Add"):  # of two computed tensors: squeeze-excitation's product, a residual
            continue
        elif op == "FakeQuantize":
            raise ConversionError(f"{path}: a quantised IR (FakeQuantize {name!r}); convert its float (fp16/fp32) IR")
        else:
            raise ConversionError(f"{path}: unsupported op {op} ({name!r}); the converter reads Convolution, "
                                  "GroupConvolution (depthwise), PReLU, MatMul, BatchNormInference and their biases")
    flush_affine()
    return layers, ({} if spec == {"mean": 0.0, "std": 1.0} else spec)


def _openvino_constant(node):
    """The value of a Constant, or of a Convert of one (compressed weights), as float32; None otherwise."""
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        return None
    return np.asarray(node.get_data(), dtype=np.float32)


def _openvino_postorder(model):
    """The IR's nodes in dataflow post-order from its result (each after its inputs, inputs in order),
    as :func:`_postorder` orders an ONNX graph's."""
    order, seen = [], set()
    stack = [(result, False) for result in reversed(model.get_results())]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node.get_name() in seen:
            continue
        seen.add(node.get_name())
        stack.append((node, True))
        for value in reversed(node.input_values()):
            if value.get_node().get_name() not in seen:
                stack.append((value.get_node(), False))
    return order
