"""Sub-center ArcFace: K centres per class, the nearest one carries the margin."""

import numpy as np
from keras import ops

from keras_arcface.heads import margins
from keras_arcface.heads.base import MarginHead, cosine_matrix
from keras_arcface.registry import register_head
from keras_arcface.validation import ANGLE_MARGIN, POSITIVE, POSITIVE_INTEGER, check_parameters


@register_head("subcenter_arcface")
class SubCenterArcFaceLayer(MarginHead):
    """Sub-center ArcFace (Deng et al., ECCV 2020): cos theta_j = max_k cos(x, W_{j,k}), then
    ArcFace, target s cos(theta_y + m); defaults K = 3, s = 64, m = 0.5.

    The kernel is (d, C K), column j K + k holding sub-centre k of class j.  Noisy samples
    gather at non-dominant sub-centres; after training, :meth:`outlier_mask` finds the samples
    farther than 75 degrees from their class's dominant sub-centre (to drop them), and
    :meth:`to_arcface` keeps only the dominant sub-centres (a plain ArcFace head) to re-train.
    """

    PARAMETER_RANGES = {"subcenters": POSITIVE_INTEGER, "scale": POSITIVE, "margin": ANGLE_MARGIN}

    def __init__(self, num_classes, subcenters=3, scale=64.0, margin=0.5, easy_margin=False, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.subcenters, self.scale, self.margin = check_parameters(self, subcenters=subcenters, scale=scale,
                                                                    margin=margin)
        self.easy_margin = bool(easy_margin)

    def kernel_columns(self):
        return self.num_classes * self.subcenters

    def subcenter_cosines(self, embeddings, scale=1.0):
        """scale * cos(x, W_{j,k}) as (B, C, K)."""
        return ops.reshape(cosine_matrix(embeddings, self.kernel, scale), (-1, self.num_classes, self.subcenters))

    def cosine(self, embeddings, scale=1.0):
        return ops.max(self.subcenter_cosines(embeddings, scale), axis=-1)

    def target_cosine(self, cos_theta_y, training=None):
        return margins.arcface_target(cos_theta_y, self.margin, self.easy_margin)

    # -- cleaning a noisy training set ----------------------------------------------------
    def _nearest(self, embeddings, labels, batch_size=4096):
        """(cos to each own-class sub-centre (N, K), labels (N,)) in NumPy, batched."""
        embeddings = np.asarray(embeddings, np.float32)
        labels = np.asarray(labels).astype(np.int64)
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        chunks = []
        for begin in range(0, len(embeddings), batch_size):
            cos = ops.convert_to_numpy(self.subcenter_cosines(embeddings[begin:begin + batch_size]))
            chunks.append(cos[np.arange(len(cos)), labels[begin:begin + batch_size]])
        return np.concatenate(chunks), labels

    def dominant_subcenters(self, embeddings, labels):
        """(C,) the sub-centre that most of each class's samples are nearest to (0 for unseen classes)."""
        own, labels = self._nearest(embeddings, labels)
        counts = np.zeros((self.num_classes, self.subcenters), np.int64)
        np.add.at(counts, (labels, own.argmax(axis=1)), 1)
        return counts.argmax(axis=1)

    def outlier_mask(self, embeddings, labels, max_angle_degrees=75.0):
        """True for samples more than ``max_angle_degrees`` from their class's dominant sub-centre."""
        own, labels = self._nearest(embeddings, labels)
        dominant = self.dominant_subcenters(embeddings, labels)
        cos = own[np.arange(len(labels)), dominant[labels]]
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) > max_angle_degrees

    def to_arcface(self, embeddings, labels, **arcface_kwargs):
        """A built :class:`ArcFaceLayer` whose centres are the dominant sub-centres."""
        from keras_arcface.heads.arcface import ArcFaceLayer

        dominant = self.dominant_subcenters(embeddings, labels)
        kernel = ops.convert_to_numpy(self.kernel)
        columns = np.arange(self.num_classes) * self.subcenters + dominant
        params = {"scale": self.scale, "margin": self.margin, "easy_margin": self.easy_margin, **arcface_kwargs}
        head = ArcFaceLayer(self.num_classes, **params)
        head.build((None, kernel.shape[0]))
        head.kernel.assign(kernel[:, columns])
        return head

    def get_config(self):
        config = super().get_config()
        config.update({"subcenters": self.subcenters, "scale": self.scale, "margin": self.margin,
                       "easy_margin": self.easy_margin})
        return config
