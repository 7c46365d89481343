"""The face-quality score's proof: the error-versus-discard arithmetic on constructed data, the recorded
curves (docs/quality_edc.json) beating random discard on LFW and the CelebA hold-out benchmark, each
listed card's recorded operating point, and (slow tier) the whole measurement made again on ../shared."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_arcface.evaluation.edc import DISCARD_FRACTIONS, false_non_match_rates, partial_area, random_discard
from keras_arcface.zoo import default_model, list_models, model_card
from tests.conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECORDED = ROOT / "docs" / "quality_edc.json"


def test_discarding_the_failing_pairs_first_drives_the_curve_to_zero_and_random_stays_flat():
    scores = np.r_[np.full(90, 0.9), np.full(10, 0.1)]   # 10 % of the genuine pairs fail at 0.5
    quality = np.r_[np.full(90, 0.8), np.full(10, 0.2)]  # and have the lowest quality
    curve = false_non_match_rates(scores, quality, 0.5)
    assert curve[0] == pytest.approx(0.1) and curve[10] == 0.0 and curve[-1] == 0.0
    mean, low, high = random_discard(scores, 0.5)
    assert np.allclose(mean, 0.1, atol=0.01) and np.all(low <= 0.1) and np.all(0.1 <= high + 1e-12)
    assert partial_area(curve) < partial_area(mean)
    upside_down = false_non_match_rates(scores, -quality, 0.5)  # discarding the best pairs first
    assert upside_down[10] == pytest.approx(10 / 90) and partial_area(upside_down) > partial_area(mean)
    assert partial_area(np.ones_like(DISCARD_FRACTIONS)) == pytest.approx(0.2)


def test_the_recorded_curves_beat_random_discard_on_both_sets():
    report = json.loads(RECORDED.read_text())
    assert report["model"].split(":")[0] == default_model()
    assert {entry["set"] for entry in report["sets"]} == {"LFW", "CelebA hold-out"}
    for entry in report["sets"]:
        area = entry["partial_area"]
        assert area["quality"] < 0.95 * area["random"], entry["set"]
        curve = np.array(entry["edc"]["quality"])
        assert curve[20] < entry["edc"]["random_mean"][20] and curve[0] == pytest.approx(entry["edc"]["random_mean"][0])
    assert (ROOT / "docs" / "quality_edc.png").is_file()


def test_every_listed_card_states_its_operating_point_at_its_default_threshold():
    for name in list_models():
        card = model_card(name)
        point = card.operating_point
        assert point and point["far"] == "1e-3", name
        fmt = card.runtime_format()
        assert point["artifact"] == fmt and point["threshold"] == card.thresholds(fmt)["threshold"], name
        assert set(point["frr"]) == {"LFW", "CelebA hold-out"} and all(0 <= v < 0.5 for v in point["frr"].values())
        assert "false rejects" in card.operating_point_summary()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "lfw" / "manifest.csv").is_file(), reason="needs ../shared/data (LFW, CelebA)")
def test_the_curves_and_the_default_operating_point_measure_again_as_recorded(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "quality_edc.py"), "--cards", default_model(),
                           "--json", str(tmp_path / "edc.json"), "--figure", str(tmp_path / "edc.png")],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    measured, recorded = (json.loads(path.read_text()) for path in (tmp_path / "edc.json", RECORDED))
    for new, old in zip(measured["sets"], recorded["sets"]):
        assert new["edc"]["quality"] == pytest.approx(old["edc"]["quality"], abs=2e-3), new["set"]
        assert new["partial_area"]["quality"] < 0.95 * new["partial_area"]["random"]
    for set_name, points in recorded["models"][recorded["model"]].items():
        for threshold, rates in points.items():
            again = measured["models"][measured["model"]][set_name][threshold]
            assert again["frr"] == pytest.approx(rates["frr"], abs=2e-3), (set_name, threshold)
