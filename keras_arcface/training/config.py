"""The training configuration: plain data, saved as JSON beside the trained model."""

import dataclasses
import json
import pathlib

from keras_arcface.data.augment import augmentation
from keras_arcface.errors import InputError
from keras_arcface.runtime.embedder import DEFAULT_SPEC
from keras_arcface.validation import NON_NEGATIVE, POSITIVE, POSITIVE_INTEGER, UNIT, Interval, check_parameters

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("sgd", "adamw")
HEAD_INITS = ("random", "imprint")


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
    and affine parameters fixed; ``head_only_epochs`` trains only the head for that many epochs first;
    ``init_head="imprint"`` starts the head's class centres at the pretrained backbone's class means.
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
    image_size: int = DEFAULT_SPEC.size[0]
    exclude_identities: list = dataclasses.field(default_factory=list)
    max_steps_per_epoch: int = 0
    keep_checkpoints: int = 3
    teacher: str = ""
    distill_weight: float = 1.0
    teacher_embedding_size: int = 0
    init_from: str = ""
    freeze_batchnorm: bool = False
    head_only_epochs: int = 0
    init_head: str = "random"

    PARAMETER_RANGES = {
        "embedding_size": POSITIVE_INTEGER, "learning_rate": POSITIVE, "momentum": Interval(0.0, 1.0, high_open=True),
        "weight_decay": NON_NEGATIVE, "warmup_epochs": NON_NEGATIVE, "final_lr_fraction": UNIT,
        "epochs": POSITIVE_INTEGER, "batch_size": POSITIVE_INTEGER, "devices": POSITIVE_INTEGER,
        "seed": Interval(0, integer=True), "image_size": Interval(16, integer=True),
        "max_steps_per_epoch": Interval(0, integer=True), "keep_checkpoints": POSITIVE_INTEGER,
        "distill_weight": NON_NEGATIVE, "teacher_embedding_size": Interval(0, integer=True),
        "head_only_epochs": Interval(0, integer=True)}

    def __post_init__(self):
        if isinstance(self.data_dirs, str):
            self.data_dirs = [self.data_dirs]
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        augmentation(self.augment)  # a clear error for an unknown name
        if self.init_head not in HEAD_INITS:
            raise InputError(f"init_head must be one of {HEAD_INITS}, got {self.init_head!r}")
        if self.init_head == "imprint" and not self.init_from:
            raise InputError("init_head='imprint' takes the class centres from a pretrained backbone: set init_from")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        check_parameters(self, **{name: getattr(self, name) for name in self.PARAMETER_RANGES})
        if not isinstance(self.head_params, dict) or not isinstance(self.backbone_params, dict):
            raise InputError(f"TrainConfig: head_params and backbone_params must be JSON objects (dicts), got "
                             f"{self.head_params!r} and {self.backbone_params!r}")
        from keras_arcface.backbones import check_backbone_parameters
        from keras_arcface.heads import get_head

        get_head(self.head, 1, **self.head_params)  # names, parameters and ranges, before any data is read
        check_backbone_parameters(self.backbone, {**self.backbone_params, "embedding_size": self.embedding_size})
        if int(self.head_only_epochs) >= int(self.epochs):
            raise InputError(f"head_only_epochs must be in [0, epochs={self.epochs}), got {self.head_only_epochs!r}")
        if self.batch_size % self.devices:
            raise InputError(f"batch_size {self.batch_size} must be divisible by devices {self.devices}")

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    def save(self, path):
        pathlib.Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path):
        return cls(**json.loads(pathlib.Path(path).read_text()))
