"""What gets exported: always the float32 embedding model (no head, no label input)."""

import pathlib

import keras

from keras_arcface.errors import InputError


def _is_half(model):
    return any(layer.dtype_policy.compute_dtype in ("float16", "bfloat16") for layer in model._flatten_layers())


def _float32_copy(model):
    """Rebuild a backbone (a registered keras_arcface model) under float32 and copy its weights."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clone = type(model).from_config(model.get_config())
    finally:
        keras.config.set_dtype_policy(previous)
    clone.set_weights([w.astype("float32") for w in model.get_weights()])
    return clone


def embedding_model(source):
    """The float32 embedding model of a training model, an embedding model, or a path.

    Paths: a training output directory or one of its ``.weights.h5`` files (rebuilt in float32
    by ``load_backbone``), or a ``.keras`` file (``safe_mode``).  A training model gives its
    backbone (the sub-model feeding the head).  Models built under a mixed policy are rebuilt
    in float32 with the same weights.
    """
    if isinstance(source, (str, pathlib.Path)):
        path = pathlib.Path(source)
        if path.name.endswith(".weights.h5") and (path.parent / "config.json").is_file():
            path = path.parent
        if path.is_dir() and (path / "config.json").is_file():
            from keras_arcface.training import load_backbone

            return load_backbone(path)
        if not path.exists():
            raise InputError(f"model {path} not found: pass a training output folder, its weights file or a "
                             ".keras file")
        if path.suffix == ".keras" and path.is_file():
            import keras_arcface.backbones  # noqa: F401  (registers the classes)

            try:
                source = keras.models.load_model(path, safe_mode=True)
            except Exception as error:  # Keras reports a corrupt archive as "File not found" and others
                detail = " ".join(str(error).split())[:200]
                raise InputError(f"cannot load {path} as a .keras model ({type(error).__name__}: {detail}); the file "
                                 "may be truncated or of another kind: save or download it again") from None
        else:
            raise InputError(f"cannot export {source!r}: expected a training directory, its weights file, "
                             "or a .keras model")
    model = source
    if len(model.inputs) == 2:  # [images, labels] -> logits: take the backbone
        backbones = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(backbones) != 1:
            raise InputError("a training model must contain exactly one backbone sub-model")
        model = backbones[0]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InputError("the embedding model must have one image input and one embedding output")
    if _is_half(model):
        model = _float32_copy(model)
    return model
