"""The ``keras-arcface`` command: one thin function per subcommand."""

import argparse
import os
import sys


def _demo(args):
    from keras_arcface.demo import run_demo

    run_demo(heads=args.heads, epochs=args.epochs, seed=args.seed)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-arcface", description="Margin-softmax face models for Keras 3")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train a small model with every margin head (no download)")
    demo.add_argument("--heads", nargs="+", default=None, help="head names (default: all six)")
    demo.add_argument("--epochs", type=int, default=12)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
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
