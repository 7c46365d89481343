"""scripts/reproduce_zoo_model.py: every card's recorded config trains again on ../shared (smoke size);
every converted card converts again from its original file and matches the shipped weights."""

import dataclasses
import json
import pathlib
import subprocess
import sys

import pytest

from keras_arcface.training import TrainConfig
from keras_arcface.zoo import list_models, model_card
from tests.conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = SHARED_DATA.parent


@pytest.mark.skipif(not (SHARED_DATA / "celeba" / "aligned").is_dir(),
                    reason="needs ../shared/data (the CelebA and Yale B crops the zoo models train on)")
def test_every_zoo_model_retrains_from_its_recorded_config(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts/reproduce_zoo_model.py"), "all", "--smoke",
                           "--shared", str(SHARED), "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    for name in list_models():
        card = model_card(name)
        if card.origin:  # a converted model is converted again and compared with what ships
            assert f"{name}: reconverted from {card.origin['file']}" in done.stdout
            assert json.loads((tmp_path / name / "config.json").read_text())["converted_from"]["sha256"] == \
                card.origin["sha256"]
            continue
        recorded = TrainConfig.load(ROOT / "saved_models" / name / card.training["config"])
        rerun = TrainConfig.load(tmp_path / name / "config.json")
        # Everything that shapes the model is the recorded run's; only paths and length differ.
        ignored = {"data_dirs", "output_dir", "teacher", "teacher_embedding_size", "epochs",
                   "max_steps_per_epoch"}
        for field in dataclasses.fields(TrainConfig):
            if field.name not in ignored:
                assert getattr(rerun, field.name) == getattr(recorded, field.name), (name, field.name)
        assert [pathlib.Path(d).parent.name for d in rerun.data_dirs] == [
            pathlib.Path(d).parent.name for d in recorded.data_dirs]
        history = json.loads((tmp_path / name / "history.json").read_text())
        assert len(history["loss"]) == 1
        assert f"{name}: smoke run trained 1 epoch(s)" in done.stdout
