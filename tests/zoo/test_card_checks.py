"""The fast guard of every card's LFW figures: each shipped file (and a converted model's original) gives the
cosines and the accuracy recorded beside its card (zoo/checks/<name>.json, scripts/record_card_checks.py) on
60 fixed LFW pairs.  A wrong preprocessing rule, a wrong weight mapping or a changed runtime moves the cosines;
the slow tier re-measures the full-LFW claims."""

import importlib.util
import json
import pathlib

import keras
import numpy as np
import pytest

from keras_arcface.evaluation.protocol import accuracy_at
from keras_arcface.zoo import read_cards
from tests.conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[2]
CARDS = read_cards(ROOT / "zoo")
_spec = importlib.util.spec_from_file_location("record_card_checks", ROOT / "scripts" / "record_card_checks.py")
record_card_checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(record_card_checks)
#: Same file, same runtime: only the CPU's instruction set (summation order) may move a cosine.
SCORE_TOLERANCE = 1e-3
#: Every shipped file (and original).  The default tier measures the file each card runs by default (its
#: runtime format), its float32 TFLite export (what the slow tier's lfw-dev report re-measures) and a converted
#: card's original (what the slow tier's published-accuracy check re-measures); the slow tier the others.
DEFAULT_TIER_FILES = ("tflite_float32", "original")
FILES = [pytest.param(name, fmt, id=f"{name}-{fmt}",
                      marks=() if fmt in (card.runtime_format(), *DEFAULT_TIER_FILES) else pytest.mark.slow)
         for name, card in sorted(CARDS.items()) for fmt in [*card.artifacts, *(["original"] if card.origin else [])]]


def _record(name):
    return json.loads((record_card_checks.CHECKS / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(CARDS))
def test_every_card_has_a_check_record_of_each_of_its_files(name):
    """A new card, or a card whose files changed, needs `python scripts/record_card_checks.py NAME`."""
    card, record = CARDS[name], _record(name)
    recorded = {fmt: entry["sha256"] for fmt, entry in record["files"].items()}
    shipped = {fmt: artifact.sha256 for fmt, artifact in card.artifacts.items()}
    if card.origin:
        shipped["original"] = card.origin["sha256"]
    assert recorded == shipped, "re-record the card's checks: python scripts/record_card_checks.py " + name
    assert len(record["pairs"]) == record["limit"] == record_card_checks.SUBSET_PAIRS
    for fmt, entry in record["files"].items():
        assert entry["threshold"] == card.thresholds("keras" if fmt == "original" else fmt)["threshold"], fmt


@pytest.mark.skipif(not (SHARED_DATA / "lfw" / "pairs.txt").is_file(), reason="needs ../shared/data/lfw")
@pytest.mark.parametrize("name, fmt", FILES)
def test_each_file_gives_the_cosines_recorded_beside_its_card(name, fmt):
    card, entry = CARDS[name], _record(name)["files"][fmt]
    if fmt == "keras" and keras.backend.backend() != "tensorflow":
        pytest.skip("the TensorFlow run measures the Keras weights")
    if fmt == "original":
        path = record_card_checks.original_path(card, SHARED_DATA.parent)
        if not path.is_file():
            pytest.skip(f"needs ../shared/models/{path.name}")
    else:
        path = record_card_checks.artifact_path(card, fmt)
    scored = record_card_checks.subset_scores(path, SHARED_DATA.parent)
    assert record_card_checks.pair_names(scored) == _record(name)["pairs"]
    np.testing.assert_allclose(scored.scores, entry["scores"], rtol=0, atol=SCORE_TOLERANCE,
                               err_msg=f"{name} {fmt}: the file no longer gives its recorded cosines")
    near = np.abs(np.asarray(entry["scores"]) - entry["threshold"]) <= SCORE_TOLERANCE
    if not near.any():  # a cosine within the tolerance of the threshold may flip its verdict
        assert accuracy_at(scored.scores, scored.same, entry["threshold"]) == pytest.approx(entry["accuracy"], abs=1e-6)
