"""Run in a fresh process with KERAS_BACKEND=jax and 2 host devices: DataParallel training."""

import json
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"

import jax  # noqa: E402
import keras  # noqa: E402

from keras_arcface.training import TrainConfig, train  # noqa: E402
from tests.faces import make_face_folder  # noqa: E402

work = tempfile.mkdtemp()
make_face_folder(f"{work}/faces", identities=4, per_identity=8, size=32)
result = train(TrainConfig(data_dirs=[f"{work}/faces"], output_dir=f"{work}/run", devices=2, epochs=2,
                           batch_size=8, backbone="iresnet18", embedding_size=16, image_size=32,
                           backbone_params={"stage_depths": [1, 1, 1, 1], "base_width": 8},
                           learning_rate=0.02, precision="mixed_bfloat16"), verbose=0)
distribution = keras.distribution.distribution()
json.dump({"devices": len(jax.devices()), "distribution": type(distribution).__name__,
           "losses": result.history["loss"]}, sys.stdout)
