"""Record beside each model card what its files give on a small fixed subset of LFW: the fast guard of
the card's full-LFW figures.

    python scripts/record_card_checks.py all --shared ../shared
    python scripts/record_card_checks.py sface --shared ../shared

Writes ``zoo/checks/<name>.json``: the subset (the first 3 same-person and 3 different-person pairs of
each of the 10 folds of LFW's pairs.txt, ``keras_arcface.evaluation.score_pairs(limit=60)``), and for
every artifact of the card (and, for a converted model, its original file in ``--shared``/models) its
sha256, the cosine of each pair, the card's threshold for it and the accuracy at that threshold.
``tests/zoo/test_card_checks.py`` measures the files again and compares (default tier, seconds a
file); the slow tier (``pytest --run-slow``) re-measures full-LFW claims.  Run this after changing a
card's files, with the slow tier, and commit the record with the card.
"""

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECKS = ROOT / "zoo" / "checks"
#: 3 same-person and 3 different-person pairs from each of the 10 folds of pairs.txt.
SUBSET_PAIRS = 60


def artifact_path(card, fmt, saved_models=ROOT / "saved_models"):
    """The file (the model folder for ``keras``) the card's ``fmt`` artifact is, in ``saved_models``."""
    folder = pathlib.Path(saved_models) / card.name
    return folder if fmt == "keras" else folder / card.artifact(fmt).file


def original_path(card, shared):
    """A converted card's original file in ``shared``/models (None for a model trained here)."""
    return pathlib.Path(shared) / "models" / card.origin["file"] if card.origin else None


def subset_scores(model, shared, limit=SUBSET_PAIRS):
    """:class:`~keras_arcface.evaluation.PairScores` of ``model`` (any source ``load_embedder`` takes) on
    the subset of ``shared``/data/lfw."""
    from keras_arcface.embedding import load_embedder
    from keras_arcface.evaluation import score_pairs

    lfw = pathlib.Path(shared) / "data" / "lfw"
    return score_pairs(load_embedder(model), lfw / "pairs.txt", lfw / "aligned", limit=limit)


def pair_names(scored):
    """The subset's pairs as ``left right same`` with the images relative to the aligned folder."""
    def relative(path):
        return "/".join(pathlib.Path(path).parts[-2:])

    return [f"{relative(p.left)} {relative(p.right)} {int(p.same)}" for p in scored.pairs]


def record(card, shared):
    """The check record of ``card``'s files (and original file) on the subset."""
    from keras_arcface.evaluation.protocol import accuracy_at
    from keras_arcface.zoo.download import sha256_of

    files, pairs = {}, None
    sources = {fmt: (artifact_path(card, fmt), card.artifact(fmt).sha256, card.thresholds(fmt)["threshold"])
               for fmt in card.artifacts}
    if card.origin:
        original = original_path(card, shared)
        if sha256_of(original) != card.origin["sha256"]:
            raise SystemExit(f"{original} is not the file {card.name} was converted from (sha256 differs)")
        sources["original"] = (original, card.origin["sha256"], card.thresholds("keras")["threshold"])
    for fmt, (path, sha256, threshold) in sources.items():
        scored = subset_scores(path, shared)
        pairs = pairs or pair_names(scored)
        files[fmt] = {"file": path.name if fmt != "keras" else card.artifact(fmt).file, "sha256": sha256,
                      "threshold": threshold, "accuracy": round(accuracy_at(scored.scores, scored.same, threshold), 6),
                      "scores": [round(float(s), 6) for s in scored.scores]}
        print(f"{card.name} {fmt}: accuracy {files[fmt]['accuracy']:.4f} on {len(scored.scores)} pairs at {threshold}")
    return {"card": card.name, "pairs_file": "lfw/pairs.txt", "limit": SUBSET_PAIRS,
            "protocol": f"the first {SUBSET_PAIRS // 20} same-person and {SUBSET_PAIRS // 20} different-person pairs "
                        "of each of the 10 folds of LFW pairs.txt (keras_arcface.evaluation.score_pairs(limit="
                        f"{SUBSET_PAIRS})), the shared aligned crops, no flip; cosine of the L2-normalised embeddings; "
                        "'accuracy': at the card's threshold for that file; 'original': the converted "
                        "model's original file, at the Keras threshold",
            "recorded_with": "python scripts/record_card_checks.py all --shared ../shared",
            "pairs": pairs, "files": files}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="zoo model names, or 'all'")
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--output", default=str(CHECKS), help="default: %(default)s")
    args = parser.parse_args(argv)

    from keras_arcface.files import write_text_atomically
    from keras_arcface.zoo import read_cards

    cards = read_cards(ROOT / "zoo")
    names = sorted(cards) if args.names == ["all"] else args.names
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_text_atomically(output / f"{name}.json", json.dumps(record(cards[name], args.shared), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
