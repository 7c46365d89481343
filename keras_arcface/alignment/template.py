"""The ArcFace 112x112 five-point template (eyes, nose tip, mouth corners; image x, y): the default
input spec's (:class:`keras_arcface.runtime.InputSpec` owns every model's template)."""

from keras_arcface.runtime.embedder import DEFAULT_SPEC

ARCFACE_TEMPLATE = DEFAULT_SPEC.landmarks
#: The crop the template's coordinates are in: the default input spec's size.
ALIGNED_SIZE = DEFAULT_SPEC.size
