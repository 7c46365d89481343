"""One training worker for test_multi_worker.py: ``train()`` on a tiny model, in whatever cluster
the environment names (``TF_CONFIG``, or ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` /
``JAX_PROCESS_ID``), or alone.  Writes the per-step losses it saw to ``--losses`` as JSON.

The backbone has no BatchNorm (per-replica batch statistics would differ from one process'), so
the cluster's losses must equal a single process' on the same global batch.

    python tests/training/multi_worker_check.py FACES OUTPUT LOSSES [--epochs N] [--head H] [--steps S]
        [--pause-in-epoch E] [--output-per-worker]

``--pause-in-epoch E``: after the first step of epoch E (1-based) write ``OUTPUT.paused-<worker>`` and
sleep, so that a test can kill the worker mid-epoch.  ``--output-per-worker``: train into
``OUTPUT-w<worker>`` (workers that do not share their folder).
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_arcface.registry import BACKBONES  # noqa: E402
from keras_arcface.training import TrainConfig, train  # noqa: E402


def batch_norm_free_backbone(embedding_size=16, input_shape=(32, 32, 3)):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(8, 3, strides=2, padding="same"),
                             keras.layers.PReLU(shared_axes=[1, 2]), keras.layers.Flatten(),
                             keras.layers.Dense(embedding_size)], name="batch_norm_free")


class StepLosses(keras.callbacks.Callback):
    """The logged loss after every step, the head's kernel shape on this process' first device, and a
    pause after the first step of ``pause_in_epoch`` (1-based; 0: none)."""

    def __init__(self, pause_marker=None, pause_in_epoch=0):
        super().__init__()
        self.losses = []
        self.pause_marker, self.pause_in_epoch = pause_marker, pause_in_epoch
        self.epoch = 0
        self.kernel_shard = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        if self.epoch + 1 == self.pause_in_epoch and batch == 0:
            pathlib.Path(self.pause_marker).write_text("paused")
            time.sleep(600)

    def on_train_end(self, logs=None):
        head = self.model.get_layer("head")
        self.head_steps = int(keras.ops.convert_to_numpy(head.iteration)) if hasattr(head, "iteration") else None
        kernel = head.kernel
        sharding = getattr(kernel.value, "sharding", None)
        self.kernel_shard = list(sharding.shard_shape(tuple(kernel.shape)) if sharding is not None else kernel.shape)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("faces")
    parser.add_argument("output")
    parser.add_argument("losses")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--head", default="arcface")
    parser.add_argument("--pause-in-epoch", type=int, default=0)
    parser.add_argument("--output-per-worker", action="store_true")
    args = parser.parse_args(argv)
    BACKBONES.register("batch_norm_free", batch_norm_free_backbone)
    tf_config = json.loads(os.environ.get("TF_CONFIG", '{"task": {}}'))
    worker = os.environ.get("JAX_PROCESS_ID") or tf_config["task"].get("index", 0)
    output = f"{args.output}-w{worker}" if args.output_per_worker else args.output
    head_params = {"sample_rate": 0.5, "num_shards": 2} if args.head == "partial_fc" else {}
    config = TrainConfig(data_dirs=[args.faces], output_dir=output, backbone="batch_norm_free",
                         embedding_size=16, image_size=32, head=args.head, head_params=head_params, epochs=args.epochs,
                         batch_size=8, max_steps_per_epoch=args.steps, learning_rate=0.05, warmup_epochs=0.5)
    recorder = StepLosses(f"{args.output}.paused-{worker}", args.pause_in_epoch)
    result = train(config, verbose=0, callbacks=[recorder])
    with open(args.losses, "w") as file:
        json.dump({"losses": recorder.losses, "epochs_run": result.epochs_run,
                   "kernel_shard": recorder.kernel_shard, "head_steps": recorder.head_steps}, file)


if __name__ == "__main__":
    main(sys.argv[1:])
