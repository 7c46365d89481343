"""The base class of every margin head: class centres, cosines, labels and the target swap."""

import warnings

import keras
from keras import ops

from keras_arcface.compilation import xla_island
from keras_arcface.dtypes import head_dtype
from keras_arcface.heads.labels import is_concrete, prepare_labels
from keras_arcface.validation import POSITIVE_INTEGER, check_parameters

_NORM_EPSILON = 1e-12  # the floor of squared norms


def l2_normalize_rows(x):
    """x / ||x|| per row; zero rows stay zero (finite gradient: the norm is floored)."""
    return x * ops.rsqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), _NORM_EPSILON))


def row_norm(x):
    """||x|| per row as (B, 1), floored so its gradient is finite at x = 0."""
    return ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), _NORM_EPSILON))


def cosine_matrix(embeddings, kernel, scale=1.0):
    """``scale`` cos(x_i, W_j) as (B, C): x_i / ||x_i|| times W, each column times scale / ||W_j||.

    One B x d x C matrix product forward and two backward.  The gradient is written out, because
    automatic differentiation of the two norms adds several (d, C) and (B, C) temporaries per step
    (docs/heads.md, "Speed"): for the upstream G,
    dL/dW = x_n^T (G s / ||W||) - W_j sum_i(G_ij logit_ij) / ||W_j||^2 and
    dL/dx_i = (g_i - x_n,i <g_i, x_n,i>) / ||x_i|| with g = (G s / ||W||) W^T.
    Norms are floored at sqrt(1e-12) (no gradient through the floor), so x = 0 or W_j = 0 stay
    finite.  ``scale`` is a Python number.  In a TensorFlow graph-mode step the forward and backward
    passes are XLA islands (:func:`keras_arcface.compilation.xla_island`), fused as under XLA.
    """

    @ops.custom_gradient
    def scaled_cosines(x, w):
        saved = _cosine_forward(x, w, scale)

        def gradient(*upstream_args, upstream=None):
            upstream = upstream_args[0] if upstream is None else upstream
            return _cosine_backward(upstream, x, w, *saved)

        return saved[0], gradient

    return scaled_cosines(embeddings, _value(kernel))


@xla_island
def _cosine_forward(x, w, scale):
    """The scaled cosines of :func:`cosine_matrix` and what its gradient reuses."""
    x_squares = ops.sum(x * x, axis=-1, keepdims=True)
    x_inverse_norm = ops.rsqrt(ops.maximum(x_squares, _NORM_EPSILON))
    x_unit = x * x_inverse_norm
    w_squares = column_sums(ops.square(w))
    w_inverse_norm = ops.rsqrt(ops.maximum(w_squares, _NORM_EPSILON))
    column_factor = scale * w_inverse_norm
    logits = ops.matmul(x_unit, w) * column_factor
    return logits, x_squares, x_inverse_norm, x_unit, w_squares, w_inverse_norm, column_factor


@xla_island
def _cosine_backward(upstream, x, w, logits, x_squares, x_inverse_norm, x_unit, w_squares, w_inverse_norm,
                     column_factor):
    """The gradients of :func:`cosine_matrix` (its docstring has the formulas) for the upstream G."""
    product_gradient = upstream * column_factor
    unit_gradient = ops.matmul(product_gradient, ops.transpose(w))
    along_x = ops.sum(unit_gradient * x_unit, axis=-1, keepdims=True) * ops.cast(x_squares > _NORM_EPSILON, x.dtype)
    x_gradient = (unit_gradient - x_unit * along_x) * x_inverse_norm
    along_w = column_sums(upstream * logits) * ops.square(w_inverse_norm) * ops.cast(
        w_squares > _NORM_EPSILON, w.dtype)
    w_gradient = ops.matmul(ops.transpose(x_unit), product_gradient) - w * along_w
    return x_gradient, w_gradient


def column_sums(matrix):
    """sum_i M_ij per column, (C,).  On JAX as a (1, rows) x (rows, C) product: XLA's CPU backend in jax
    reduces over the major axis far slower than its multi-threaded dot (docs/heads.md, "Speed")."""
    if keras.backend.backend() == "jax":
        return ops.matmul(ops.ones((1, ops.shape(matrix)[0]), dtype=matrix.dtype), matrix)[0]
    return ops.sum(matrix, axis=0)


def _value(tensor_or_variable):
    """A variable's value as a tensor (TensorFlow's custom gradients must not see the variable itself;
    Keras' JAX wrapper unwraps variables on its own)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(tensor_or_variable)
    return tensor_or_variable


def _target_indices(labels):
    """(B, 2) [row, max(label, 0)]: the entry each row's target swap reads and writes."""
    rows = ops.arange(ops.shape(labels)[0], dtype="int32")
    return ops.stack([rows, ops.maximum(labels, 0)], axis=1)


def _gather_entries(matrix, indices):
    """matrix[i, indices[i, 1]] as (B,) (rows in order; no flat index, which would overflow int32 at B x C >= 2^31)."""
    return ops.take_along_axis(matrix, indices[:, 1:2], axis=1)[:, 0]


def target_column(matrix, labels):
    """(matrix, matrix[i, labels_i]): the matrix unchanged and its B labelled entries (rows labelled -1
    read column 0), for :func:`replace_target_column`.

    One op with one gradient: the entries' gradient is added into the matrix's in place (a scatter of
    B values), where automatic differentiation of a gather would build a dense (B, C) gradient and add
    it to the matrix's: two (B, C) passes fewer per step in TensorFlow graphs.
    """
    indices = _target_indices(labels)

    @ops.custom_gradient
    def split(matrix):
        def gradient(*upstream_args, upstream=None):
            upstream = upstream_args if upstream is None else upstream
            if len(upstream) == 1:  # JAX passes the outputs' cotangents as one tuple
                upstream = upstream[0]
            matrix_gradient, entries_gradient = upstream
            added = _gather_entries(matrix_gradient, indices) + entries_gradient
            return ops.scatter_update(matrix_gradient, indices, added)

        return (matrix, _gather_entries(matrix, indices)), gradient

    return split(matrix)


def replace_target_column(matrix, labels, target, current):
    """``matrix`` (B, C) with entry (i, labels_i) set to ``target_i`` (the target swap of every margin
    head): a scatter of B entries, no (B, C) one-hot.  ``matrix`` and ``current`` come from
    :func:`target_column`; rows labelled -1 (invalid in a graph) keep ``current``, so are unchanged."""
    return ops.scatter_update(matrix, _target_indices(labels), ops.where(labels >= 0, target, current))


def per_row(scale):
    """A head's logit scale as a number or (B,): s stays s, ||x|| (B, 1) becomes (B,)."""
    return scale if isinstance(scale, (int, float)) else scale[:, 0]


def split_inputs(inputs, labels=None):
    """Accept ``head(emb)``, ``head(emb, labels=y)`` and ``head([emb, y])``."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) == 1:
            inputs = inputs[0]
        elif len(inputs) == 2:
            if labels is not None:
                raise ValueError("labels were given twice: in the input pair and as labels=")
            inputs, labels = inputs
        else:
            raise ValueError(f"a head takes embeddings or [embeddings, labels]; got {len(inputs)} inputs")
    return inputs, labels


class MarginHead(keras.layers.Layer):
    """Shared machinery: W (d, C) class centres, cos theta_j = <x/||x||, W_j/||W_j||>.

    ``call(inputs, labels=None, training=None)``:
      * with labels: ``scale * cos theta_j`` for j != y and ``scale * target(cos theta_y)``
        for the labelled class (the margin), float32;
      * without labels: the margin-free ``scale * cos theta_j`` (inference, or training
        through :class:`~keras_arcface.heads.loss.MarginLoss`, which adds the margin).

    Subclasses define :meth:`target_cosine` (a call to one formula of ``margins.py``) and
    the scale.  Labels are validated by :func:`~keras_arcface.heads.labels.prepare_labels`.
    """

    #: False for heads whose target equals cos theta_y (NormFace) or that have no margin.
    has_margin = True
    #: Why the head has no loss form (``margin_loss()``), or None where it has one: the loss form needs
    #: logits that one constant turns back into cosines, and no per-step state or sampling in the layer.
    no_loss_form = None
    #: True for heads whose margin depends on the embedding's norm (MagFace, AdaFace): their
    #: ``target_cosine`` receives ``norms`` (B,), and they have no loss form.
    needs_norms = False
    #: The allowed range of each numeric constructor parameter (merged with the subclasses').
    PARAMETER_RANGES = {"num_classes": POSITIVE_INTEGER}

    def __init__(self, num_classes, kernel_initializer="glorot_uniform", kernel_regularizer=None,
                 dtype=None, **kwargs):
        super().__init__(dtype=head_dtype(dtype), **kwargs)
        self.num_classes = check_parameters(self, num_classes=num_classes)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self._margin_loss_attached = False
        self._warned_missing_margin_loss = False

    # -- weights ---------------------------------------------------------------------------
    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(
                input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        embedding_size = input_shape[-1]
        if embedding_size is None:
            raise ValueError("the embedding size (last axis) must be known to build a head")
        self.kernel = self.add_weight(
            name="kernel", shape=(int(embedding_size), self.kernel_columns()),
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer)
        # Rows whose label was invalid in a compiled step (ignored there); read and reset per epoch by
        # IgnoredLabelRows.  Not saved with the weights (files keep their layout).
        self.ignored_label_rows = self.add_weight(name="ignored_label_rows", shape=(), dtype="int32",
                                                  initializer="zeros", trainable=False)

    def count_ignored_labels(self, labels):
        """Add the rows of prepared ``labels`` marked invalid (-1) to ``ignored_label_rows`` (graphs only:
        eager calls raise on invalid labels instead)."""
        if getattr(self, "ignored_label_rows", None) is not None and not is_concrete(labels):
            self.ignored_label_rows.assign(self.ignored_label_rows + ops.sum(ops.cast(labels < 0, "int32")))

    def kernel_columns(self):
        """Columns of W: one centre per class here; sub-centres and shard padding add more."""
        return self.num_classes

    # -- formulas, overridden per head -----------------------------------------------------
    def logit_scale(self, embeddings):
        """The factor multiplying every cosine: s (a float) or ||x|| (B, 1)."""
        return self.scale

    def target_cosine(self, cos_theta_y, training=None):
        """The labelled class's value on the cosine scale (the margin formula)."""
        return cos_theta_y

    # -- the shared path -------------------------------------------------------------------
    def cosine(self, embeddings, scale=1.0):
        """scale * cos theta_j, (B, C); ``scale`` a Python number."""
        return cosine_matrix(embeddings, self.kernel, scale)

    def scaled_cosine(self, embeddings, scale):
        """scale * cos theta_j for a number (folded into the product) or a (B, 1) tensor."""
        if isinstance(scale, (int, float)):
            return self.cosine(embeddings, scale)
        return scale * self.cosine(embeddings)

    def margin_logits(self, logits, labels, scale, training=None, norms=None):
        """The margin-free ``logits`` = scale * cos theta_j with each labelled entry replaced by
        scale * target(cos theta_y): B entries gathered, B entries scattered.

        ``labels`` are prepared int32 ids; -1 (invalid in a graph) replaces nothing.
        ``norms`` (B,) are the embeddings' norms, for heads with ``needs_norms``.
        """
        if not self.has_margin:
            return logits
        logits, current = target_column(logits, labels)
        row_scale = per_row(scale)
        extra = {"norms": norms} if self.needs_norms else {}
        target = self.target_cosine(current / row_scale, training=training, **extra)
        return replace_target_column(logits, labels, row_scale * target, current)

    def call(self, inputs, labels=None, training=None):
        embeddings, labels = split_inputs(inputs, labels)
        embeddings = ops.cast(embeddings, self.compute_dtype)
        scale = self.logit_scale(embeddings)
        logits = self.scaled_cosine(embeddings, scale)
        if labels is None:
            if training and self.has_margin:
                self._warn_missing_margin_loss()
            return logits
        labels = prepare_labels(labels, self.num_classes)
        if training:
            self.count_ignored_labels(labels)
        norms = row_norm(embeddings)[:, 0] if self.needs_norms else None
        return self.margin_logits(logits, labels, scale, training=training, norms=norms)

    def _warn_missing_margin_loss(self):
        if self._margin_loss_attached or self._warned_missing_margin_loss:
            return
        self._warned_missing_margin_loss = True
        remedy = " or compile with loss=head.margin_loss()" if self.no_loss_form is None else ""
        warnings.warn(
            f"{type(self).__name__} is training without labels, so its logits carry no margin. "
            f"Pass labels (head([embeddings, labels])){remedy}.", stacklevel=3)

    def margin_loss(self, **kwargs):
        """A :class:`MarginLoss` for ``model.compile(loss=head.margin_loss())`` (Sequential); heads with a
        ``no_loss_form`` reason raise ``NotImplementedError`` saying it and how to train them."""
        from keras_arcface.heads.loss import MarginLoss

        return MarginLoss(self, **kwargs)

    def require_loss_form(self):
        """Raise ``NotImplementedError`` with the reason when the head has no loss form."""
        if self.no_loss_form is not None:
            raise NotImplementedError(
                f"{type(self).__name__} has no loss form ({self.no_loss_form}): call it as head([embeddings, "
                "labels]) in a functional model and train with SparseCategoricalCrossentropy(from_logits=True).")

    # -- state outside the layer's own variables (seed generators) --------------------------
    def extra_state(self):
        """{name: variable} saved with the layer's weights besides its own variables; Keras does
        not save a SeedGenerator's state, so heads that draw random numbers list it here."""
        return {}

    def _saved_variables(self):
        """The layer's own variables as Keras saves them, less the ignored-label counter."""
        counter = getattr(self, "ignored_label_rows", None)
        return [v for v in self._trainable_variables + self._non_trainable_variables if v is not counter]

    def save_own_variables(self, store):
        for index, variable in enumerate(self._saved_variables()):
            store[f"{index}"] = variable
        for name, variable in self.extra_state().items():
            store[name] = variable

    def load_own_variables(self, store):
        extra = self.extra_state()
        for name, variable in extra.items():
            if name in store.keys():  # files written before the state was saved lack it
                variable.assign(store[name])
        own = self._saved_variables()
        stored = [key for key in store.keys() if key not in extra]
        if len(stored) != len(own):
            raise ValueError(f"{self.name}: the file holds {len(stored)} variables for this head, it has {len(own)}")
        for index, variable in enumerate(own):
            variable.assign(store[f"{index}"])

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(
                input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        })
        return config
