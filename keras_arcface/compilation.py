"""How a computation is being compiled, and XLA islands inside a TensorFlow graph-mode step.

XLA fuses elementwise passes that TensorFlow's graph mode runs one by one through memory, but on
a CPU it compiles convolutions badly (docs/training.md, "Training speed").  A training step in graph
mode can still run its head under XLA: :func:`xla_island` compiles one function with
``tf.function(jit_compile=True)`` inside an otherwise graph-mode step (docs/heads.md, "Speed").
"""

import functools


def tracing_for_tensorflow_xla():
    """True while TensorFlow traces a graph that XLA will compile (``tf.function(jit_compile=True)``
    or a function nested in one)."""
    try:  # TensorFlow marks the graph of a tf.function(jit_compile=True) with an XLA context
        from tensorflow.python.framework import ops as tf_ops
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # a TensorFlow without these internals: report no XLA
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph()))


def computation_target():
    """Where the ops being built now will run, as ``(compiler, device)``: compiler ``"xla"``
    (TensorFlow's ``jit_compile=True``, or JAX, which compiles every step) or ``"tensorflow"``
    (graph or eager mode), device ``"cpu"`` or ``"gpu"`` (or JAX's ``"tpu"``); another backend gives
    ``(backend, "other")``.  Layers pick the fastest formulation of the same numbers by it
    (``backbones/conv.py``, ``backbones/depthwise.py``)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return "xla", jax.default_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        device = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
        return "xla" if tracing_for_tensorflow_xla() else "tensorflow", device
    return backend, "other"


def xla_island(function):
    """``function`` XLA-compiled where it runs inside a TensorFlow graph-mode step that is not XLA
    already; as it is everywhere else (eagerly, under XLA, on JAX, which compiles every step).

    The compiled function is made once and traced once per argument signature (Python arguments
    included), so the numbers are those of ``function``'s ops, fused."""
    compiled = []

    @functools.wraps(function)
    def wrapper(*args):
        import keras

        if keras.backend.backend() != "tensorflow":
            return function(*args)
        import tensorflow as tf

        if not tf.inside_function() or tracing_for_tensorflow_xla():
            return function(*args)
        if not compiled:
            compiled.append(tf.function(function, jit_compile=True, reduce_retracing=False))
        return compiled[0](*args)

    return wrapper
