"""Plain softmax head: logits = W^T x + b (no normalisation, no margin)."""

import keras
from keras import ops

from keras_arcface.heads.base import MarginHead, split_inputs
from keras_arcface.heads.labels import prepare_labels
from keras_arcface.registry import register_head


@register_head("softmax", old_names=("SoftmaxHead",))
class SoftmaxLayer(MarginHead):
    """The baseline of the ArcFace survey: logits_j = W_j^T x + b_j.

    Labels, when given, are validated and otherwise unused: there is no margin.
    """

    has_margin = False

    def __init__(self, num_classes, use_bias=True, bias_initializer="zeros", **kwargs):
        super().__init__(num_classes, **kwargs)
        self.use_bias = bool(use_bias)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        self.bias = (self.add_weight(name="bias", shape=(self.num_classes,),
                                     initializer=self.bias_initializer)
                     if self.use_bias else None)

    def call(self, inputs, labels=None, training=None):
        embeddings, labels = split_inputs(inputs, labels)
        if labels is not None:
            prepare_labels(labels, self.num_classes)
        logits = ops.matmul(ops.cast(embeddings, self.compute_dtype), self.kernel)
        return logits + self.bias if self.use_bias else logits

    def get_config(self):
        config = super().get_config()
        config.update({"use_bias": self.use_bias,
                       "bias_initializer": keras.initializers.serialize(self.bias_initializer)})
        return config
