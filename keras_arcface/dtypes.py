"""The dtype rule shared by heads and backbones, and a scoped dtype policy."""

import contextlib


def head_dtype(dtype=None):
    """float32 under a mixed policy (float16 / bfloat16 compute), else the policy's dtype (float64 stays).

    Heads compute logits and the softmax in it, and backbones emit their embedding in it: margins of
    0.35 rad on s = 64 logits need float32 resolution.
    """
    import keras

    policy = keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()
    if policy.compute_dtype in ("float16", "bfloat16"):
        return "float32"
    return policy.name if dtype is None else dtype


@contextlib.contextmanager
def dtype_policy(precision):
    """Keras' global dtype policy set to ``precision`` for the block, then restored."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
