"""Build the CelebA hold-out benchmark: CelebA identities that no zoo-training run from issue 17 on
sees, as LFW-format pairs (10 folds of 300 same- and 300 different-person pairs).

    python scripts/make_holdout_benchmark.py            # ../shared/data/celeba -> benchmarks/celeba-holdout
    keras-arcface eval --model sface --pairs benchmarks/celeba-holdout/pairs.txt \
        --images benchmarks/celeba-holdout/images
    keras-arcface train ... --exclude ../shared/data/celeba/lfw_overlap_candidates.csv \
        benchmarks/celeba-holdout/identities.txt

Which identities: of the CelebA subset's folders, those not on the LFW-overlap list
(``lfw_overlap_candidates.csv``) with at least ``--min-images`` images, ordered by the sha256 of
``"celeba-holdout:" + name`` (a fixed, name-only shuffle that looks at no model or score), the first
``--identities``.  Their images are never trained on when a run passes ``identities.txt`` to
``--exclude``; the LFW-overlap identities are left out of the benchmark too, so it shares no person
with LFW either.  The pairs, identities and sources files are committed; ``images/`` (links to the
CelebA files, which may not be redistributed) is rebuilt by this script.
"""

import argparse
import hashlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_arcface.data import read_identity_names  # noqa: E402
from keras_arcface.evaluation.benchmark import build_pairs_benchmark, identity_images  # noqa: E402


def holdout_identities(celeba, count, min_images):
    """``count`` CelebA identities off the LFW-overlap list with >= ``min_images`` images, in hash order."""
    overlap = set(read_identity_names(pathlib.Path(celeba) / "lfw_overlap_candidates.csv"))
    aligned = pathlib.Path(celeba) / "aligned"
    candidates = [p.name for p in aligned.iterdir()
                  if p.is_dir() and p.name not in overlap and len(identity_images(aligned, p.name)) >= min_images]
    ordered = sorted(candidates, key=lambda name: hashlib.sha256(f"celeba-holdout:{name}".encode()).hexdigest())
    if len(ordered) < count:
        raise SystemExit(f"only {len(ordered)} CelebA identities have >= {min_images} images; lower --identities")
    return ordered[:count]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--celeba", default=str(ROOT.parent / "shared" / "data" / "celeba"))
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "celeba-holdout"))
    parser.add_argument("--identities", type=int, default=60, help="held-out identities (a multiple of --folds)")
    parser.add_argument("--min-images", type=int, default=12)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--pairs-per-fold", type=int, default=300,
                        help="same-person pairs per fold (and as many different)")
    args = parser.parse_args(argv)
    names = holdout_identities(args.celeba, args.identities, args.min_images)
    pairs = build_pairs_benchmark(pathlib.Path(args.celeba) / "aligned", names, args.output, folds=args.folds,
                                  pairs_per_fold=args.pairs_per_fold)
    print(f"wrote {pairs}: {args.folds} folds of {args.pairs_per_fold} same and {args.pairs_per_fold} different "
          f"pairs over {len(names)} identities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
