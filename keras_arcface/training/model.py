"""The training model: backbone + head on [images, labels], with an XLA step per replica."""

import keras

from keras_arcface.heads import get_head


@keras.saving.register_keras_serializable(package="keras_arcface")
class MarginTrainingModel(keras.Model):
    """The functional training model, with a TensorFlow train step that fixes two things.

    1. XLA under ``MirroredStrategy`` (``per_replica_xla=True``):
       ``model.compile(jit_compile=True)`` inside a ``MirroredStrategy`` scope fails in Keras
       3.15 / TF 2.21 ("Trying to access resource .../replica_1 ... located in device CPU:1
       from device CPU:0", keras-team/keras#18627, #21366): Keras compiles the whole step,
       optimizer and all-reduce included, as one XLA function traced once.  Here each replica
       gets its own ``tf.function(jit_compile=True)``, traced under that replica's device, for
       the forward pass, the loss and the gradients; the gradient all-reduce and the update
       run outside XLA, as Keras does them.  Compile with ``jit_compile=False``.
    2. Loss scaling across replicas: Keras' ``LossScaleOptimizer`` decides to apply or skip a
       step from the *first* replica's local gradients only; when another replica overflows in
       float16 its inf is summed into the update and every weight turns NaN (seen with ArcFace
       s = 64, BatchNorm, mixed_float16 on 2 CPUs).  Here the replicas first agree (an
       all-reduce of their overflow flags) and every replica's gradients carry the overflow.

    3. A distributed dataset under ``MultiWorkerMirroredStrategy``: Keras' first-batch build
       reduces the whole (nested) batch with one ``strategy.reduce``, which that strategy rejects
       ("Attempt to convert a value (PerReplica ...) to a Tensor"); here the build reads one
       replica's batch (only its shapes and dtypes matter).  And Keras reduces each logged
       metric across workers with ``strategy.reduce("MEAN", value, axis=0)``, which fails on a
       scalar ("Invalid reduction dimension 0 for input with 0 dimensions"): under several workers
       the step returns each metric as a vector of one.

    On other backends the standard Keras step runs (JAX compiles every step with XLA).
    """

    per_replica_xla = False

    def _forward_backward(self, x, y, sample_weight):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                      training=True)
            scaled = self.optimizer.scale_loss(loss)
        return loss, y_pred, tape.gradient(scaled, self.trainable_weights)

    def _xla_forward_backward_for_this_replica(self):
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        replica = int(tf.get_static_value(context.replica_id_in_sync_group)) if context else 0
        compiled = self.__dict__.setdefault("_xla_step_by_replica", {})
        if replica not in compiled:
            compiled[replica] = tf.function(self._forward_backward, jit_compile=True)
        return compiled[replica]

    def _agree_on_overflow(self, gradients):
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if (not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) or context is None
                or context.num_replicas_in_sync == 1):
            return gradients
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None])
        # merge_call (not all_reduce): it synchronises the replica threads, so the collective
        # keys of this reduction and of the optimizer's gradient all-reduce stay in step.
        overflowed = context.merge_call(
            lambda strategy, flags: strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None),
            args=(1.0 - tf.cast(finite, "float32"),))
        poison = tf.where(overflowed > 0.5, float("nan"), 0.0)
        return [None if g is None else g + tf.cast(poison, g.dtype) for g in gradients]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if keras.backend.backend() == "tensorflow" and iterator is not None and data_batch is None:
            import tensorflow as tf

            strategy = self.distribute_strategy
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda value: (strategy.experimental_local_results(value)[0]
                                   if isinstance(value, tf.distribute.DistributedValues) else value), next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, *args):
        if keras.backend.backend() != "tensorflow":
            return super().train_step(*args)
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(args[0])
        step = self._xla_forward_backward_for_this_replica() if self.per_replica_xla else self._forward_backward
        loss, y_pred, gradients = step(x, y, sample_weight)
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        # The step's loss is scaled by 1 / replicas for the gradient sum; the tracker wants it back.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self._loss_tracker.update_state(loss * tf.cast(replicas, loss.dtype), sample_weight=batch)
        self.optimizer.apply(self._agree_on_overflow(gradients), self.trainable_weights)
        metrics = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        if _across_workers(tf.distribute.get_strategy()):
            metrics = tf.nest.map_structure(lambda value: tf.reshape(value, [1]), metrics)
        return metrics


def _across_workers(strategy):
    """Whether ``strategy`` spans several workers (Keras then reduces the step's logs along axis 0)."""
    extended = strategy.extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def build_training_model(backbone, head, per_replica_xla=False, teacher_size=0, distill_weight=1.0):
    """[images, labels] -> margin logits; the backbone alone is the embedding model.

    ``teacher_size`` > 0 adds a third input, the teacher's embedding, and the
    :class:`~keras_arcface.training.distill.EmbeddingDistillation` loss term (``distill_weight``).
    """
    images = keras.Input(backbone.input_shape[1:], name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    embeddings = backbone(images)
    inputs = [images, labels]
    if teacher_size:
        from keras_arcface.training.distill import EmbeddingDistillation

        teacher = keras.Input((int(teacher_size),), name="teacher")
        embeddings = EmbeddingDistillation(teacher_size, distill_weight, name="distillation")([embeddings, teacher])
        inputs.append(teacher)
    logits = head([embeddings, labels])
    model = MarginTrainingModel(inputs, logits, name="training_model")
    model.per_replica_xla = bool(per_replica_xla)
    return model


def build_from_config(config, num_classes):
    """Backbone and head from a :class:`TrainConfig`."""
    import dataclasses

    from keras_arcface.backbones import backbone_from_config

    backbone = backbone_from_config(dataclasses.asdict(config))
    head = get_head(config.head, num_classes, name="head", **config.head_params)
    return backbone, head


def compile_for_training(model, optimizer, jit_compile, classification_weight=1.0):
    """Compile with float32 sparse cross-entropy, weighted by ``classification_weight`` (0: only the
    model's added losses, e.g. distillation, train it); XLA per replica when distributed on TF.
    ``jit_compile`` chooses between graph mode and XLA on TensorFlow; on JAX every step is compiled
    (Keras' JAX trainer would run ``jit_compile=False`` eagerly, op by op)."""
    per_replica = getattr(model, "per_replica_xla", False)
    on_tensorflow = keras.backend.backend() == "tensorflow"
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  loss_weights=float(classification_weight),
                  jit_compile=bool(jit_compile) and not per_replica if on_tensorflow else "auto")
    # Build the optimizer now (in the strategy scope): its loss scale must be a variable
    # before the first step is traced, or the trace bakes in the initial scale.
    model.optimizer.build(model.trainable_variables)
    return model
