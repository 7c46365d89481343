"""Recreate a zoo model from its recorded configuration and compare it with its model card.

    python scripts/reproduce_zoo_model.py mfn-arcface-lfw-disjoint --shared ../shared --output runs/repro
    python scripts/reproduce_zoo_model.py all --shared ../shared      # every card, one after another
    python scripts/reproduce_zoo_model.py all --shared ../shared --check  # what a reproduction reads, in seconds

Reads ``saved_models/<name>/config.json`` (the exact TrainConfig of the run: seed, schedule,
head, augmentation, data folders, excluded identities, distillation teacher), points its data
folders and teacher at ``--shared``, trains into ``--output`` (resumable), evaluates the float32 Keras model
on all 6000 LFW pairs and prints it
beside the card's figure and training time.  Same seed, same data and same software give the
same schedule; bit-identical weights are not promised across machines (thread scheduling and
oneDNN change float summation order).

A converted model (its card has an ``origin``) is reproduced by converting its original file from
``--shared``/models again (its sha256 checked against the card) and comparing the result with the
shipped Keras weights on LFW faces (400, or 16 with ``--smoke``).

``--check`` trains and converts nothing: it reads every card's recorded configuration, finds its data
folders (the identities the card was trained on, after the exclusions, and the first batch), its
teacher and a converted model's original file (sha256 against the card): the default test tier's
guard of the reproduction, which ``--smoke`` runs in the slow tier.
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
    parser.add_argument("--check", action="store_true",
                        help="train and convert nothing: check that everything a reproduction reads is there and "
                             "is what the card was made from")
    args = parser.parse_args(argv)

    from keras_arcface.zoo import list_models

    names = list_models(include_examples=True) if args.names == ["all"] else args.names
    for name in names:
        if args.output:
            one = len(args.names) == 1 and args.names != ["all"]
            output = args.output if one else str(pathlib.Path(args.output) / name)
        else:
            output = f"runs/reproduce-{name}"
        reproduce(name, pathlib.Path(args.shared), output, args.smoke, args.check)
    return 0


def reproduce(name, shared, output, smoke=False, check=False):
    from keras_arcface.embedding import load_embedder
    from keras_arcface.evaluation import evaluate_pairs
    from keras_arcface.training import TrainConfig, train
    from keras_arcface.zoo import model_card

    card = model_card(name)
    if card.origin:
        return reconvert(card, shared, output, smoke, check)
    config = TrainConfig.load(ROOT / "saved_models" / name / card.training["config"])
    data_dirs = [str(shared / "data" / pathlib.Path(d).parent.name / "aligned") for d in config.data_dirs]
    teacher = str(shared / "models" / pathlib.Path(config.teacher).name) if config.teacher else ""
    config = dataclasses.replace(config, data_dirs=data_dirs, output_dir=output, teacher=teacher,
                                 teacher_embedding_size=0)
    if teacher and not pathlib.Path(teacher).is_file():
        raise FileNotFoundError(f"{name} is distilled from {teacher}, which is missing")
    if check:
        return check_training_data(card, config)
    if smoke:
        config = dataclasses.replace(config, epochs=1, max_steps_per_epoch=2, teacher="")
    start = time.perf_counter()
    result = train(config, verbose=2)
    minutes = (time.perf_counter() - start) / 60
    if smoke:
        print(f"{name}: smoke run trained {result.epochs_run} epoch(s), loss "
              f"{result.history['loss'][-1]:.4f}, in {minutes:.1f} min; outputs in {output}")
        return
    lfw = shared / "data" / "lfw"
    report = evaluate_pairs(load_embedder(output), lfw / "pairs.txt", lfw / "aligned")
    recorded = [m for m in card.metrics if m["artifact"] == "keras" and m["benchmark"] == "LFW"][0]
    print(f"{name}: reproduced LFW {report['accuracy_mean'] * 100:.2f} ± {report['accuracy_std'] * 100:.2f} "
          f"in {minutes:.1f} min ({result.samples_per_second:.1f} samples/s); the card says "
          f"{recorded['accuracy_mean'] * 100:.2f} ± {recorded['accuracy_std'] * 100:.2f} in "
          f"{card.training['seconds'] / 60:.1f} min on {card.training['hardware']}")


#: The faces each (folders, image size, exclusions) read to: the trained cards share their data, read once.
_FACES_READ = {}


def check_training_data(card, config):
    """The recorded run's data, read as the reproduction would: the card's number of identities, one batch."""
    from keras_arcface.training.run import load_faces, make_batches

    key = (tuple(config.data_dirs), config.image_size, tuple(sorted(config.exclude_identities or ())))
    faces = _FACES_READ[key] = _FACES_READ[key] if key in _FACES_READ else load_faces(config)
    if faces.num_classes != card.training["identities"]:
        raise ValueError(f"{card.name}: {config.data_dirs} hold {faces.num_classes} identities after the exclusions; "
                         f"the card was trained on {card.training['identities']}")
    batches = make_batches(config, faces)
    _, labels = batches[0]
    print(f"{card.name}: checked {len(faces.labels)} images of {faces.num_classes} identities in {config.data_dirs}, "
          f"{len(batches)} batches an epoch (the first read, {len(labels)} labels)"
          + (f", teacher {pathlib.Path(config.teacher).name}" if config.teacher else ""))


def reconvert(card, shared, output, smoke, check=False):
    """Convert the card's original file again and compare with the shipped weights (with ``check``:
    only find the original and check its sha256)."""
    import json

    import numpy as np

    from keras_arcface.alignment import sample_faces_for
    from keras_arcface.convert import convert
    from keras_arcface.embedding import load_embedder
    from keras_arcface.runtime import InputSpec
    from keras_arcface.zoo.download import sha256_of

    source = shared / "models" / card.origin["file"]
    if not source.is_file():
        raise FileNotFoundError(f"{card.name} is converted from {source}, which is missing")
    if sha256_of(source) != card.origin["sha256"]:
        raise ValueError(f"{source} is not the file {card.name} was converted from (sha256 differs from the card)")
    weights = card.origin.get("weights_file")  # an OpenVINO IR's .bin
    if weights and sha256_of(source.with_name(weights)) != card.origin["weights_sha256"]:
        raise ValueError(f"{source.with_name(weights)} is not the weights file {card.name} was converted from "
                         f"(sha256 differs from the card)")
    if check:
        print(f"{card.name}: checked {source.name} (sha256 as the card records)")
        return
    recorded = json.loads((ROOT / "saved_models" / card.name / card.training["config"]).read_text())
    faces = sample_faces_for(shared / "data" / "lfw" / "aligned", 16 if smoke else 400, InputSpec(**card.input_spec))
    start = time.perf_counter()
    config = convert(source, recorded["backbone"], output, faces, backbone_params=recorded["backbone_params"],
                     embedding_size=recorded["embedding_size"])
    shipped = load_embedder(ROOT / "saved_models" / card.name).embed(faces)
    again = load_embedder(output).embed(faces)
    agreement = float(np.sum(shipped * again, axis=1).min())
    print(f"{card.name}: reconverted from {source.name} in {time.perf_counter() - start:.0f} s: parity to the original "
          f"{config['parity']['min_cosine']:.7f}, minimum cosine to the shipped weights {agreement:.7f} on "
          f"{len(faces)} LFW faces")
    if agreement < 0.9999:
        raise ValueError(f"{card.name}: the reconverted weights differ from the shipped ones ({agreement:.6f})")


if __name__ == "__main__":
    sys.exit(main())
