"""The ArcFace 112x112 five-point template (eyes, nose tip, mouth corners; image x, y)."""

import numpy as np

from keras_arcface.runtime.embedder import DEFAULT_SPEC

ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963],
                             [73.5318, 51.5014],
                             [56.0252, 71.7366],
                             [41.5493, 92.3655],
                             [70.7299, 92.2041]], dtype=np.float32)
#: The crop the template's coordinates are in: the default input spec's size.
ALIGNED_SIZE = DEFAULT_SPEC.size
