"""The training configuration: plain data, saved as JSON beside the trained model."""

import dataclasses
import json
import pathlib

from keras_arcface.data.augment import augmentation

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("sgd", "adamw")


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs; ``keras-arcface train`` maps its flags onto it.

    ``data_dirs``: face folders ``<root>/<identity>/<image>`` (several are merged, identities
    kept apart); ``exclude_identities``: names to drop (e.g. the LFW-overlap list).
    ``warmup_epochs`` ramp the learning rate linearly from 0, then cosine decay to
    ``final_lr_fraction`` x ``learning_rate``.  ``devices`` > 1: MirroredStrategy (TensorFlow)
    or DataParallel (JAX).  ``augment`` names a setting of ``keras_arcface.data.augment.AUGMENTATIONS`` ("none",
    "light", "medium").  ``max_steps_per_epoch`` caps an epoch (tests, quick checks).
    ``init_from``: start the backbone from a zoo name, a ``.weights.h5`` file or a run / converted
    model folder (the head is new); ``freeze_batchnorm`` keeps the backbone's BatchNorm statistics
    and affine parameters fixed; ``head_only_epochs`` trains only the head for that many epochs first.
    """

    data_dirs: list
    output_dir: str
    backbone: str = "mobilefacenet"
    backbone_params: dict = dataclasses.field(default_factory=dict)
    embedding_size: int = 128
    head: str = "arcface"
    head_params: dict = dataclasses.field(default_factory=dict)
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    final_lr_fraction: float = 0.0
    epochs: int = 20
    batch_size: int = 128
    precision: str = "float32"
    jit_compile: bool = False
    devices: int = 1
    seed: int = 0
    flip: bool = True
    augment: str = "none"
    tensorboard: bool = False
    image_size: int = 112
    exclude_identities: list = dataclasses.field(default_factory=list)
    max_steps_per_epoch: int = 0
    keep_checkpoints: int = 3
    teacher: str = ""
    distill_weight: float = 1.0
    teacher_embedding_size: int = 0
    init_from: str = ""
    freeze_batchnorm: bool = False
    head_only_epochs: int = 0

    def __post_init__(self):
        if isinstance(self.data_dirs, str):
            self.data_dirs = [self.data_dirs]
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        augmentation(self.augment)  # a clear error for an unknown name
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("epochs", "batch_size", "devices", "image_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if int(self.head_only_epochs) < 0 or int(self.head_only_epochs) >= int(self.epochs):
            raise ValueError(f"head_only_epochs must be in [0, epochs={self.epochs}), got {self.head_only_epochs!r}")
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by devices {self.devices}")

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    def save(self, path):
        pathlib.Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path):
        return cls(**json.loads(pathlib.Path(path).read_text()))
