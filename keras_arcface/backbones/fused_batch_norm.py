"""BatchNormalization whose training step is TensorFlow's fused kernel: Keras' layer computes the batch
moments and the normalisation as a dozen separate ops (mean, squared difference, tiles, muls), and
their gradients cost more than ``FusedBatchNormV3`` and its gradient do (fwd + bwd on a
(64, 56, 56, 128) input in graph mode: 427 ms against 290 ms on the 2-core CPU,
``scripts/bench_backbone_layers.py``; in a MobileFaceNet step 3.1 s against 1.1 s; ``docs/training.md``,
"Training speed").  Same weights, same moving averages, the same outputs to float32 rounding.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_arcface")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` (Ioffe & Szegedy, 2015): ``y = gamma (x - mu_B) / sqrt(var_B
    + eps) + beta`` in training, with ``moving = momentum * moving + (1 - momentum) * batch`` of the
    biased batch variance; the moving statistics otherwise.

    On TensorFlow, training on 4-D channels-last float32 / float16 / bfloat16 inputs runs the fused
    kernel; everything else (another backend, float64, masks, renorm, synchronized statistics,
    inference) is Keras' own code.  It keeps Keras' class name on purpose: a ``.weights.h5`` keys each
    layer by its class name, so weights saved with Keras' layer load into this one and back.
    """

    def _fused_applies(self, inputs, training, mask):
        return (keras.backend.backend() == "tensorflow" and training and self.trainable and mask is None
                and not self.renorm and not self.synchronized and len(inputs.shape) == 4
                and self.axis in (-1, 3) and keras.backend.standardize_dtype(inputs.dtype)
                in ("float32", "float16", "bfloat16"))

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels], "float32")
        beta = self.beta if self.center else tf.zeros([channels], "float32")
        outputs, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=ops.cast(gamma, "float32"), offset=ops.cast(beta, "float32"),
            mean=tf.zeros([0], "float32"), variance=tf.zeros([0], "float32"), epsilon=self.epsilon,
            is_training=True, data_format="NHWC")
        count = ops.cast(tf.size(inputs) // channels, "float32")
        variance = unbiased_variance * (count - 1.0) / count  # the kernel returns var * n / (n - 1)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)
