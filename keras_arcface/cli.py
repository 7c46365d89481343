"""The ``keras-arcface`` command: one thin function per subcommand."""

import argparse
import os
import sys


def _demo(args):
    from keras_arcface.demo import run_demo

    run_demo(heads=args.heads, epochs=args.epochs, seed=args.seed)
    return 0


def _train(args):
    import json

    from keras_arcface.training import TrainConfig, TrainingDivergedError, train

    config = TrainConfig(
        data_dirs=args.data, output_dir=args.output, backbone=args.backbone,
        embedding_size=args.embedding_size, head=args.head, head_params=json.loads(args.head_params),
        optimizer=args.optimizer, learning_rate=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, epochs=args.epochs,
        batch_size=args.batch_size, precision=args.precision, jit_compile=args.jit_compile,
        devices=args.devices, seed=args.seed, flip=not args.no_flip, tensorboard=args.tensorboard,
        image_size=args.image_size, exclude_identities=_read_names(args.exclude),
        max_steps_per_epoch=args.max_steps_per_epoch)
    try:
        result = train(config)
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    losses = result.history.get("loss", [])
    print(f"trained {config.backbone} + {config.head} on {result.num_images} images of "
          f"{result.num_classes} identities: {len(losses)} epoch(s) this run"
          + (f", final loss {losses[-1]:.4f}, {result.samples_per_second:.1f} samples/s" if losses else
             " (already complete)") + f"; outputs in {result.output_dir}")
    return 0


def _read_names(path):
    """Identity names to exclude: a text file (one per line) or a CSV whose first column holds them."""
    if not path:
        return []
    import csv

    with open(path, newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
    if rows and rows[0][0] in ("id_a", "name", "identity"):
        rows = rows[1:]
    return [row[0].strip() for row in rows]


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-arcface", description="Margin-softmax face models for Keras 3")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a small model with every margin head (no download)")
    demo.add_argument("--heads", nargs="+", default=None, help="head names (default: all six)")
    demo.add_argument("--epochs", type=int, default=12)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    train = commands.add_parser("train", help="train a backbone with a margin head on face folders",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--data", nargs="+", required=True, help="face folders <root>/<identity>/<image>")
    train.add_argument("--output", required=True, help="output directory (re-run to resume)")
    train.add_argument("--backbone", default="mobilefacenet")
    train.add_argument("--embedding-size", type=int, default=128)
    train.add_argument("--head", default="arcface")
    train.add_argument("--head-params", default="{}", help='JSON, e.g. \'{"margin": 0.4}\'')
    train.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    train.add_argument("--lr", type=float, default=0.1)
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--weight-decay", type=float, default=5e-4)
    train.add_argument("--warmup-epochs", type=float, default=1.0)
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--precision", choices=["float32", "mixed_float16", "mixed_bfloat16"], default="float32")
    train.add_argument("--jit-compile", action="store_true", help="XLA-compile the training step")
    train.add_argument("--devices", type=int, default=1, help="replicas (MirroredStrategy / DataParallel)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-flip", action="store_true")
    train.add_argument("--tensorboard", action="store_true")
    train.add_argument("--image-size", type=int, default=112)
    train.add_argument("--exclude", help="file of identity names to leave out (txt, or CSV first column)")
    train.add_argument("--max-steps-per-epoch", type=int, default=0)
    train.set_defaults(func=_train)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if getattr(args, "heads", None) is None and args.command == "demo":
        from keras_arcface.demo import DEFAULT_HEADS

        args.heads = DEFAULT_HEADS
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
