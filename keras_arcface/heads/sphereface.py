"""SphereFace / A-Softmax: multiplicative angular margin with lambda annealing."""


from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead, row_norm
from keras_arcface.registry import register_head
from keras_arcface.validation import NON_NEGATIVE, POSITIVE_INTEGER, Interval, check_parameters


@register_head("sphereface")
class SphereFaceLayer(MarginHead):
    """SphereFace (Liu et al., CVPR 2017), W normalised, integer margin m (default 4).

    Target logit f_y = (lambda ||x|| cos theta_y + ||x|| psi(theta_y)) / (1 + lambda), with
    psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m]; others ||x|| cos theta_j.
    lambda = max(lambda_min, base (1 + gamma iter)^(-power)), iter a non-trainable counter
    that advances once per training call (so it is saved, restored and resumed).
    ``scale=s`` gives the feature-normalised variant: s replaces ||x||.

    SphereFace needs its labels inside the layer (``head([embeddings, labels])``): the
    margin-free logits cannot give back ||x|| nor the step's lambda, so ``margin_loss()`` (the
    Sequential form) is not offered for it.
    """

    no_loss_form = "its margin-free logits cannot give back ||x|| nor the step's lambda"

    #: m: the multiplicative angular margin, an integer (cos(m theta) via Chebyshev); scale None is ||x||.
    PARAMETER_RANGES = {"margin": POSITIVE_INTEGER, "scale": Interval(0.0, low_open=True, allow_none=True),
                        "lambda_base": NON_NEGATIVE, "lambda_gamma": NON_NEGATIVE, "lambda_power": NON_NEGATIVE,
                        "lambda_min": NON_NEGATIVE}

    def __init__(self, num_classes, margin=4, scale=None, lambda_base=1000.0, lambda_gamma=0.12,
                 lambda_power=1.0, lambda_min=5.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        (self.margin, self.scale, self.lambda_base, self.lambda_gamma, self.lambda_power,
         self.lambda_min) = check_parameters(self, margin=margin, scale=scale, lambda_base=lambda_base,
                                             lambda_gamma=lambda_gamma, lambda_power=lambda_power,
                                             lambda_min=lambda_min)

    def build(self, input_shape):
        super().build(input_shape)
        # Every replica advances its own copy by one per step (no cross-replica sync point,
        # so the step can be XLA-compiled per replica under MirroredStrategy); copies agree.
        self.iteration = self.add_weight(
            name="iteration", shape=(), dtype="int32", initializer="zeros", trainable=False)

    def current_lambda(self):
        """lambda at the current iteration counter."""
        return margins.sphereface_lambda(self.iteration, self.lambda_base, self.lambda_gamma,
                                         self.lambda_power, self.lambda_min)

    def logit_scale(self, embeddings):
        return row_norm(embeddings) if self.scale is None else self.scale

    def target_cosine(self, cos_theta_y, training=None):
        target = margins.sphereface_target(cos_theta_y, self.margin, self.current_lambda())
        if training:
            self.iteration.assign(self.iteration + 1)
        return target


    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin, "scale": self.scale,
                       "lambda_base": self.lambda_base, "lambda_gamma": self.lambda_gamma,
                       "lambda_power": self.lambda_power, "lambda_min": self.lambda_min})
        return config
