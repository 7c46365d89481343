"""The command line: demo-heads trains every head it is given and prints its table (the zoo demo
and the zoo commands are tested in tests/zoo/test_load.py)."""

import pytest

from keras_arcface.cli import main


@pytest.mark.backend_neutral
def test_demo_heads_trains_heads_and_prints_the_angle_table(capsys):
    assert main(["demo-heads", "--heads", "softmax", "arcface", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "synthetic data: no face-accuracy claim" in out
    table = [line.split() for line in out.splitlines() if line.startswith(("softmax ", "arcface "))]
    assert [row[0] for row in table] == ["softmax", "arcface"]
    for row in table:
        loss, accuracy, own, other = float(row[1]), float(row[2].rstrip("%")), float(row[3]), float(row[4])
        assert loss >= 0 and 0 <= accuracy <= 100 and 0 <= own <= 180 and 0 <= other <= 180


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["nope"])
