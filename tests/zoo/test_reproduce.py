"""scripts/reproduce_zoo_model.py: every card's recorded config trains again on ../shared (smoke size) and
every converted card converts again from its original file and matches the shipped weights (slow tier);
in the default tier ``--check`` finds everything a reproduction reads and compares it with the card."""

import dataclasses
import importlib.util
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
needs_shared = pytest.mark.skipif(not (SHARED_DATA / "celeba" / "aligned").is_dir(),
                                  reason="needs ../shared/data (the CelebA and Yale B crops the zoo models train on)")


def _script():
    spec = importlib.util.spec_from_file_location("reproduce_zoo_model", ROOT / "scripts/reproduce_zoo_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_shared
def test_every_zoo_model_finds_what_its_reproduction_reads(tmp_path, capsys):
    """The fast guard of the reproduction: each trained card's recorded data gives the card's identities after
    its exclusions and a first batch, its teacher is there; each converted card's original has its sha256."""
    assert _script().main(["all", "--check", "--shared", str(SHARED), "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for name in list_models():
        card = model_card(name)
        if card.origin:
            assert f"{name}: checked {card.origin['file']} (sha256 as the card records)" in printed
        else:
            assert f"{name}: checked " in printed and f" images of {card.training['identities']} identities" in printed
    assert not list(tmp_path.iterdir()), "--check writes nothing"


def test_the_check_refuses_data_that_is_not_what_the_card_was_trained_on(tmp_path):
    from tests.faces import make_face_folder

    trained = next(name for name in list_models(include_examples=True) if not model_card(name).origin)
    script = _script()
    recorded = TrainConfig.load(ROOT / "saved_models" / trained / model_card(trained).training["config"])
    for folder in recorded.data_dirs:  # two identities in each folder the card's run read, instead of its data
        make_face_folder(tmp_path / "data" / pathlib.Path(folder).parent.name / "aligned", identities=2,
                         per_identity=2, size=112)
    if recorded.teacher:
        (tmp_path / "models").mkdir()
        (tmp_path / "models" / pathlib.Path(recorded.teacher).name).write_bytes(b"teacher")
    with pytest.raises(ValueError, match=f"{trained}: .* hold 4 identities after the exclusions; the card was trained "
                                         f"on {model_card(trained).training['identities']}"):
        script.main([trained, "--check", "--shared", str(tmp_path), "--output", str(tmp_path / "out")])


@pytest.mark.slow
@needs_shared
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
