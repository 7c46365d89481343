"""Recreate a zoo model from its recorded configuration and compare it with its model card.

    python scripts/reproduce_zoo_model.py mfn-arcface-lfw-disjoint --shared ../shared --output runs/repro
    python scripts/reproduce_zoo_model.py all --shared ../shared      # every card, one after another

Reads ``saved_models/<name>/config.json`` (the exact TrainConfig of the run: seed, schedule,
head, augmentation, data folders, excluded identities, distillation teacher), points its data
folders and teacher at ``--shared``, trains into ``--output`` (resumable), evaluates the float32 Keras model on all 6000 LFW pairs and prints it
beside the card's figure and training time.  Same seed, same data and same software give the
same schedule; bit-identical weights are not promised across machines (thread scheduling and
oneDNN change float summation order).
"""

import argparse
import dataclasses
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="zoo model names, or 'all'")
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--output", help="the run directory for one name, the parent of <name>/ for several or 'all' "
                        "(default: runs/reproduce-<name>)")
    parser.add_argument("--smoke", action="store_true",
                        help="1 epoch of 2 steps without the teacher (its file is only checked) and no LFW "
                             "evaluation: checks the path, reproduces nothing")
    args = parser.parse_args(argv)

    from keras_arcface.zoo import list_models

    names = list_models() if args.names == ["all"] else args.names
    for name in names:
        if args.output:
            one = len(args.names) == 1 and args.names != ["all"]
            output = args.output if one else str(pathlib.Path(args.output) / name)
        else:
            output = f"runs/reproduce-{name}"
        reproduce(name, pathlib.Path(args.shared), output, args.smoke)
    return 0


def reproduce(name, shared, output, smoke=False):
    from keras_arcface.evaluation import evaluate_pairs, load_embedder
    from keras_arcface.training import TrainConfig, train
    from keras_arcface.zoo import model_card

    card = model_card(name)
    config = TrainConfig.load(ROOT / "saved_models" / name / card.training["config"])
    data_dirs = [str(shared / "data" / pathlib.Path(d).parent.name / "aligned") for d in config.data_dirs]
    teacher = str(shared / "models" / pathlib.Path(config.teacher).name) if config.teacher else ""
    config = dataclasses.replace(config, data_dirs=data_dirs, output_dir=output, teacher=teacher,
                                 teacher_embedding_size=0)
    if teacher and not pathlib.Path(teacher).is_file():
        raise FileNotFoundError(f"{name} is distilled from {teacher}, which is missing")
    if smoke:
        config = dataclasses.replace(config, epochs=1, max_steps_per_epoch=2, teacher="")
    start = time.perf_counter()
    result = train(config, verbose=2)
    minutes = (time.perf_counter() - start) / 60
    if smoke:
        print(f"{name}: smoke run trained {len(result.history['loss'])} epoch(s), loss "
              f"{result.history['loss'][-1]:.4f}, in {minutes:.1f} min; outputs in {output}")
        return
    lfw = shared / "data" / "lfw"
    report = evaluate_pairs(load_embedder(output), lfw / "pairs.txt", lfw / "aligned")
    recorded = [m for m in card.metrics if m["artifact"] == "keras" and m["benchmark"] == "LFW"][0]
    print(f"{name}: reproduced LFW {report['accuracy_mean'] * 100:.2f} ± {report['accuracy_std'] * 100:.2f} "
          f"in {minutes:.1f} min ({result.samples_per_second:.1f} samples/s); the card says "
          f"{recorded['accuracy_mean'] * 100:.2f} ± {recorded['accuracy_std'] * 100:.2f} in "
          f"{card.training['seconds'] / 60:.1f} min on {card.training['hardware']}")


if __name__ == "__main__":
    sys.exit(main())
