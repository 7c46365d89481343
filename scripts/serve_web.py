"""Serve the face-verification page (web/) and the files it runs, from this machine only.

    npm ci --prefix web                       # once: onnxruntime-web and LiteRT.js, pinned (web/package-lock.json)
    python scripts/serve_web.py [--port 8080] [--model NAME]

then open http://127.0.0.1:8080/ (``?runtime=onnx`` or ``litert``, ``&threads=2``).  The page fetches
nothing from another origin: its JavaScript from web/node_modules, and under ``models/``:

- ``config.json``: the model's name, each file's input spec and card threshold, the runtime to use;
- the zoo model's runtime TFLite file (with its metadata; its batch dimension declared 1, as LiteRT.js
  cannot resize an input) and its ONNX file (``keras_arcface.zoo``: the bundled file, the cache, or the
  mirrors);
- ``yunet.onnx``: the bundled YuNet detector with its block-quantised int8 weights dequantised to
  float32 (onnxruntime refuses its per-tensor ``DequantizeLinear`` nodes that carry a block size; OpenCV
  dequantises them when it loads the file, so the numbers are those our Python detector computes) and
  its input size left free, as OpenCV's ``FaceDetectorYN`` sets it per photo.

Responses carry ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy:
require-corp``: WASM threads need them (SharedArrayBuffer).  ``--write FOLDER`` writes the page, the
packages it loads and ``models/`` into a folder any static web server serves as it is.
"""

import argparse
import functools
import http.server
import json
import pathlib
import sys
import threading

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
#: The runtime the page uses unless told: the faster in headless Chromium here (docs/on-device.md).
DEFAULT_RUNTIME = "litert"


def dequantized_detector(path):
    """The YuNet ONNX file at ``path`` as bytes with every ``DequantizeLinear`` of constant weights folded
    into a float32 initializer ((q - zero point) * scale, per tensor, per axis or per block) and its input
    height and width left free."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    kept, folded = [], []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(name in constants for name in node.input if name):
            kept.append(node)
            continue
        q = numpy_helper.to_array(constants[node.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(constants[node.input[1]]).astype(np.float64)
        zero = (numpy_helper.to_array(constants[node.input[2]]).astype(np.float64)
                if len(node.input) > 2 and node.input[2] else np.zeros_like(scale))
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axis, block = attributes.get("axis", 1) % max(q.ndim, 1), attributes.get("block_size", 0)
        if scale.size == 1:
            value = (q - zero.reshape(())) * scale.reshape(())
        elif block:  # each scale and zero point covers ``block`` consecutive entries along the axis
            def expand(per_block):
                return np.repeat(per_block, block, axis=axis).take(range(q.shape[axis]), axis=axis)

            value = (q - expand(zero)) * expand(scale)
        else:
            shape = [1] * q.ndim
            shape[axis] = -1
            value = (q - zero.reshape(shape)) * scale.reshape(shape)
        folded.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
    used = {name for node in kept for name in node.input}
    remaining = [init for init in graph.initializer if init.name in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(remaining + folded)
    del graph.value_info[:]  # shapes inferred for 640 x 640; onnxruntime infers them again
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.output:
        for dim in output.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value not in (1, 4, 10):
                dim.dim_param = "anchors"
    return model.SerializeToString()


def with_a_batch_of_one(model_bytes):
    """A TFLite flatbuffer for one face a call, every shape static: the batch dimension declared 1 instead of
    any (-1), and each ``RESHAPE`` whose target shape the graph computes from the input's (``SHAPE``,
    ``STRIDED_SLICE``, ``PACK``: Keras' flatten) given that shape as a constant, the ops that computed it
    removed.  LiteRT.js 2.5 cannot resize an input, refuses a [1, h, w, 3] tensor for a [-1, h, w, 3] one,
    and cannot hand back an output whose size is computed at run time.  Weights and metadata are the file's;
    tests/test_web.py checks the page's embeddings against the Python runtime's on the original file."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    codes = [code.deprecatedBuiltinCode if code.builtinCode == 0 else code.builtinCode for code in model.operatorCodes]
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            if tensor.shapeSignature is not None and len(tensor.shapeSignature) and tensor.shapeSignature[0] == -1:
                tensor.shapeSignature[0] = 1
        for op in subgraph.operators:
            if codes[op.opcodeIndex] != schema.BuiltinOperator.RESHAPE or len(op.inputs) < 2:
                continue
            shape_tensor = subgraph.tensors[op.inputs[1]]
            if model.buffers[shape_tensor.buffer].data is not None:
                continue  # a constant already
            buffer = schema.BufferT()
            buffer.data = np.asarray(subgraph.tensors[op.outputs[0]].shape, np.int32).view(np.uint8)
            model.buffers.append(buffer)
            constant = schema.TensorT()
            constant.shape, constant.type = np.asarray([len(subgraph.tensors[op.outputs[0]].shape)], np.int32), \
                schema.TensorType.INT32
            constant.buffer, constant.name = len(model.buffers) - 1, b"static_shape"
            subgraph.tensors.append(constant)
            op.inputs[1] = len(subgraph.tensors) - 1
        while True:  # drop the ops whose outputs nothing reads any more
            read = {i for op in subgraph.operators for i in op.inputs} | set(subgraph.outputs)
            dead = [op for op in subgraph.operators if not any(o in read for o in op.outputs)]
            if not dead:
                break
            subgraph.operators = [op for op in subgraph.operators if op not in dead]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def model_files(name=None):
    """``(config, {url path: file path or bytes})`` of what ``models/`` serves for zoo model ``name``
    (default: the zoo's default)."""
    from keras_arcface.alignment.detector import BUNDLED_DETECTOR
    from keras_arcface.zoo import default_model, download, model_card

    name = name or default_model()
    card = model_card(name)
    tflite_format = card.runtime_format() if card.runtime_format().startswith("tflite") else "tflite_float32"
    served = {"yunet.onnx": dequantized_detector(BUNDLED_DETECTOR)}
    files = {}
    for key, fmt in (("tflite", tflite_format), ("onnx", "onnx")):
        path = download(name, fmt)
        served[path.name] = with_a_batch_of_one(path.read_bytes()) if key == "tflite" else path
        files[key] = {"url": f"models/{path.name}", "format": fmt, "spec": card.file_spec(fmt),
                      "threshold": card.thresholds(fmt)["threshold"]}
    config = {"model": name, "detector": "models/yunet.onnx", "runtime": DEFAULT_RUNTIME, "files": files}
    served["config.json"] = json.dumps(config, indent=1).encode()
    return config, served


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """web/ as static files, ``models/`` from :func:`model_files`, with the isolation headers."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
                      ".tflite": "application/octet-stream"}
    models = {}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/models/"):
            item = self.models.get(path[len("/models/"):])
            if item is None:
                self.send_error(404)
                return
            body = item if isinstance(item, bytes) else pathlib.Path(item).read_bytes()
            self.send_response(200)
            kind = "application/json" if path.endswith(".json") else "application/octet-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format, *args):  # quiet: a page load is dozens of requests
        pass


def start_server(port=0, model=None, extra=None, web=WEB):
    """A started ``ThreadingHTTPServer`` on 127.0.0.1 (``port`` 0: a free one) serving the page; ``extra``:
    more ``{url path under models/: file or bytes}`` (a test's photos).  Its ``config`` attribute is the page's
    config."""
    config, served = model_files(model)
    handler = type("Handler", (PageHandler,), {"models": {**served, **(extra or {})}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(web)))
    server.config = config
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


#: What the page loads from web/node_modules (source maps left out).
PAGE_PACKAGES = ("onnxruntime-web/dist", "@litertjs/core/dist", "@litertjs/core/wasm", "@litertjs/wasm-utils/dist")
PAGE_FILES = ("index.html", "verify.js", "face.js")


def write_static(folder, model=None, web=WEB):
    """The page as a folder any static web server can serve: its files, the JavaScript packages it loads and
    ``models/``.  WASM threads need the server to send the two cross-origin isolation headers; one thread
    (the default) needs nothing."""
    import shutil

    folder = pathlib.Path(folder)
    for name in PAGE_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(web / name, folder / name)
    for package in PAGE_PACKAGES:
        shutil.copytree(web / "node_modules" / package, folder / "node_modules" / package,
                        ignore=shutil.ignore_patterns("*.map"), dirs_exist_ok=True)
    _, served = model_files(model)
    (folder / "models").mkdir(exist_ok=True)
    for name, item in served.items():
        (folder / "models" / name).write_bytes(item if isinstance(item, bytes) else pathlib.Path(item).read_bytes())
    return folder


def browser():
    """``(chromium, chromedriver)`` paths of the system's Chromium and its driver (Debian's ``chromium`` and
    ``chromium-driver`` packages), or None."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def open_page(url, timeout=120, size=(1100, 900)):
    """A headless Chromium (Selenium) on ``url``, once the page says it is ready; RuntimeError with the page's
    status when it failed to load its models."""
    import time

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the page's requests (requested_urls)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_script_timeout(timeout)
    driver.get(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script("return document.body && document.body.dataset.ready")
        if state in ("true", "error"):
            break
        time.sleep(0.1)
    if state != "true":
        status = driver.execute_script("const s = document.getElementById('status'); return s && s.textContent")
        driver.quit()
        raise RuntimeError(f"the page did not load its models: {status!r} ({state or 'timed out'})")
    return driver


def requested_urls(driver):
    """Every URL the page requested since the last call (Chromium's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def page_call(driver, expression, *args):
    """The value of the JavaScript ``expression`` (awaited; ``args`` are ``args[0]``...) in the page;
    RuntimeError with the page's error."""
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const args = Array.from(arguments).slice(0, -1);"
        f"(async () => ({expression}))().then((value) => done({{value}}), (error) => done({{error: String(error)}}));",
        *args)
    if "error" in result:
        raise RuntimeError(f"{expression}: {result['error']}")
    return result["value"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="the port on 127.0.0.1 (default 8080)")
    parser.add_argument("--model", help="a zoo model's name (default: the zoo's default)")
    parser.add_argument("--write", metavar="FOLDER",
                        help="write the page, its packages and models/ into FOLDER for any static server, and exit")
    args = parser.parse_args(argv)
    if not (WEB / "node_modules" / "onnxruntime-web").is_dir():
        sys.exit("web/node_modules is missing: run `npm ci --prefix web` first")
    if args.write:
        print(write_static(args.write, args.model))
        return
    server = start_server(args.port, args.model)
    print(f"http://127.0.0.1:{server.server_address[1]}/  ({server.config['model']}; Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
