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


def _option(default=dataclasses.MISSING, help="", flag=None, choices=None, read=None):
    """A field of :class:`TrainConfig` with what its command-line flag needs (the CLI generates the
    train and lr-find flags from these fields): ``help``; ``flag`` where it differs from the field name;
    ``choices``, a registry or tuple as ``"module:NAME"`` (imported only when the flag is used); ``read``,
    a ``"module:function"`` that turns the flag's value (a file) into the field's.  A callable default
    is a factory (``dict``, ``list``); no default makes the flag required."""
    metadata = {"help": help, "flag": flag, "choices": choices, "read": read}
    if callable(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs; ``keras-arcface train`` maps its flags onto it.

    ``data_dirs``: face folders ``<root>/<identity>/<image>`` (several are merged, identities
    kept apart); ``exclude_identities``: names to drop (e.g. the LFW-overlap list).
    ``warmup_epochs`` ramp the learning rate linearly from 0, then cosine decay to
    ``final_lr_fraction`` x ``learning_rate``.  ``devices`` > 1: MirroredStrategy (TensorFlow)
    or DataParallel (JAX).  ``multi_worker``: "auto" trains in the cluster the environment names
    (``TF_CONFIG``; ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``), every
    worker on all of its devices, ``batch_size`` being the global batch (docs/training.md).
    ``augment`` names a setting of ``keras_arcface.data.augment.AUGMENTATIONS`` ("none", "light",
    "medium").  ``max_steps_per_epoch`` caps an epoch (tests, quick checks).
    ``init_from``: start the backbone from a zoo name, a ``.weights.h5`` file or a run / converted
    model folder (the head is new); ``freeze_batchnorm`` keeps the backbone's BatchNorm statistics
    and affine parameters fixed; ``head_only_epochs`` trains only the head for that many epochs first;
    ``init_head="imprint"`` starts the head's class centres at the pretrained backbone's class means.
    """

    data_dirs: list = _option(help="face folders <root>/<identity>/<image>", flag="--data")
    output_dir: str = _option(help="output directory (re-run to resume)", flag="--output")
    backbone: str = _option("mobilefacenet", "backbone network: %(choices)s",
                            choices="keras_arcface.backbones:BACKBONES")
    backbone_params: dict = _option(dict, 'the backbone\'s parameters, JSON, e.g. \'{"width": 0.5}\'')
    embedding_size: int = _option(128, "embedding dimension")
    head: str = _option("arcface", "margin head: %(choices)s", choices="keras_arcface.heads:HEADS")
    head_params: dict = _option(dict, 'the head\'s parameters, JSON, e.g. \'{"margin": 0.4}\'')
    optimizer: str = _option("sgd", "optimizer: %(choices)s", choices=f"{__name__}:OPTIMIZERS")
    learning_rate: float = _option(0.1, "peak learning rate (after warm-up), cosine decay", flag="--lr")
    momentum: float = _option(0.9, "SGD momentum")
    weight_decay: float = _option(5e-4, "weight decay")
    warmup_epochs: float = _option(1.0, "linear learning-rate warm-up from 0, in epochs")
    final_lr_fraction: float = _option(0.0, "the learning rate at the end, as a fraction of the peak")
    epochs: int = _option(20, "training epochs")
    batch_size: int = _option(128, "global batch size (over all devices)")
    precision: str = _option("float32", "Keras dtype policy, %(choices)s (heads compute in float32 under any)",
                             choices=f"{__name__}:PRECISIONS")
    jit_compile: bool = _option(False, "XLA-compile the training step (TensorFlow; JAX always compiles it)")
    devices: int = _option(1, "replicas on this machine (MirroredStrategy / DataParallel)")
    multi_worker: str = _option("auto", "train with the workers TF_CONFIG (TensorFlow) or JAX_COORDINATOR_ADDRESS, "
                                        "JAX_NUM_PROCESSES and JAX_PROCESS_ID (JAX) name: auto (when set), off, "
                                        "on (fail without them)",
                                choices="keras_arcface.training.distribute:MULTI_WORKER_MODES")
    seed: int = _option(0, "seed of the weights, shuffling and augmentation")
    flip: bool = _option(True, "random horizontal flips (--no-flip: none)")
    augment: str = _option("none", "random shift/scale/rotation and lighting jitter: %(choices)s",
                           choices="keras_arcface.data.augment:AUGMENTATIONS")
    tensorboard: bool = _option(False, "write TensorBoard logs to <output>/tensorboard")
    image_size: int = _option(DEFAULT_SPEC.size[0], "side of the aligned square crops, px")
    exclude_identities: list = _option(list, "files of identity names to leave out (txt, or CSV first column)",
                                       flag="--exclude", read="keras_arcface.data:read_identity_names")
    max_steps_per_epoch: int = _option(0, "cap on steps per epoch (0: no cap)")
    keep_checkpoints: int = _option(3, "epoch checkpoints kept (the newest)")
    teacher: str = _option("", "distil from this .onnx / .tflite embedding model (its licence must allow it)")
    distill_weight: float = _option(1.0, "weight of the 1 - cos(student, teacher) term")
    classification_weight: float = _option(1.0, "weight of the head's cross-entropy (0 with --teacher: "
                                                "distillation only)")
    teacher_embedding_size: int = _option(0, "recorded by train: the teacher's embedding size", flag=False)
    input_spec: dict = _option(None, "recorded by train: the input normalisation of the init_from model when it is "
                                     "not the default (x - 127.5) / 128; the run trains and is used with it",
                               flag=False)
    init_from: str = _option("", "start the backbone from a zoo name, a .weights.h5 file, or a run / converted-model "
                                 "folder (the head is new)")
    freeze_batchnorm: bool = _option(False, "keep the backbone's BatchNorm statistics and scale/offset fixed")
    head_only_epochs: int = _option(0, "train only the head for this many epochs first")
    init_head: str = _option("random", "imprint: start each class centre at the --init-from backbone's mean "
                                       "embedding of that class (weight imprinting); %(choices)s",
                             choices=f"{__name__}:HEAD_INITS")

    PARAMETER_RANGES = {
        "embedding_size": POSITIVE_INTEGER, "learning_rate": POSITIVE, "momentum": Interval(0.0, 1.0, high_open=True),
        "weight_decay": NON_NEGATIVE, "warmup_epochs": NON_NEGATIVE, "final_lr_fraction": UNIT,
        "epochs": POSITIVE_INTEGER, "batch_size": POSITIVE_INTEGER, "devices": POSITIVE_INTEGER,
        "seed": Interval(0, integer=True), "image_size": Interval(16, integer=True),
        "max_steps_per_epoch": Interval(0, integer=True), "keep_checkpoints": POSITIVE_INTEGER,
        "distill_weight": NON_NEGATIVE, "classification_weight": NON_NEGATIVE,
        "teacher_embedding_size": Interval(0, integer=True),
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
        from keras_arcface.training.distribute import MULTI_WORKER_MODES

        if self.multi_worker not in MULTI_WORKER_MODES:
            raise InputError(f"multi_worker must be one of {MULTI_WORKER_MODES}, got {self.multi_worker!r}")
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
        if not self.classification_weight and not (self.teacher and self.distill_weight):
            raise InputError("classification_weight 0 leaves nothing to learn without distillation: set teacher "
                             "and a distill_weight above 0, or classification_weight above 0")

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    def save(self, path):
        pathlib.Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path):
        return cls(**json.loads(pathlib.Path(path).read_text()))
