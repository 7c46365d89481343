"""The command line: demo-heads trains every head it is given and prints its table (the zoo demo
and the zoo commands are tested in tests/zoo/test_load.py)."""

import pytest

from keras_arcface.cli import main


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


def _subcommand_parsers(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommand_parsers(sub, (*prefix, name))
    if prefix:
        yield " ".join(prefix), parser


def test_every_flag_has_help_with_its_default_and_choices():
    """Help texts: every argument is explained, a flag's default is shown, choices are listed."""
    import argparse

    from keras_arcface.cli import build_parser

    checked = 0
    for command, parser in _subcommand_parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{command} {action.option_strings or action.dest} has no help"
            if action.option_strings and action.default not in (None, False):
                shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
                assert f"(default: {shown})" in " ".join(text.split()), (command, action.option_strings)
            if action.choices is not None:
                assert all(str(choice) in text for choice in action.choices), (command, action.option_strings)
            checked += 1
    assert checked > 60


def test_train_flags_are_generated_from_every_train_config_field(tmp_path):
    """Every field can be set from the command line, an unset flag leaves the dataclass default (no
    default restated), and lr-find's ramp flags default to lr_range_test's."""
    import dataclasses
    import inspect

    from keras_arcface.cli import _config_from_args, build_parser
    from keras_arcface.training import TrainConfig, lr_range_test

    parser = build_parser()
    plain = _config_from_args(parser.parse_args(["train", "--data", "d", "--output", "o"]))
    assert plain == TrainConfig(data_dirs=["d"], output_dir="o")
    exclude, more = tmp_path / "exclude.txt", tmp_path / "more.csv"
    exclude.write_text("Ann\nBob\n")
    more.write_text("name,n\nBob,1\nCid,2\n")
    argv = ["train", "--data", "d1", "d2", "--output", "o", "--backbone", "sface", "--backbone-params",
            '{"width": 0.5}', "--embedding-size", "64", "--head", "cosface", "--head-params", '{"margin": 0.3}',
            "--optimizer", "adamw", "--lr", "0.01", "--momentum", "0.8", "--weight-decay", "0.001",
            "--warmup-epochs", "2", "--final-lr-fraction", "0.05", "--epochs", "3", "--batch-size", "8",
            "--precision", "mixed_bfloat16", "--jit-compile", "--devices", "2", "--multi-worker", "off", "--seed", "7",
            "--no-flip", "--augment", "light", "--tensorboard", "--image-size", "96", "--exclude", str(exclude),
            str(more), "--max-steps-per-epoch", "5", "--keep-checkpoints", "2", "--teacher", "t.onnx",
            "--distill-weight", "0.5", "--classification-weight", "0.5", "--init-from", "sface", "--freeze-batchnorm",
            "--head-only-epochs", "1", "--init-head", "imprint"]
    config = _config_from_args(parser.parse_args(argv))
    changed = {f.name for f in dataclasses.fields(TrainConfig) if getattr(config, f.name) != getattr(plain, f.name)}
    settable = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("flag") is not False}
    assert changed == settable - {"output_dir"}, sorted(settable - changed)
    assert config.backbone_params == {"width": 0.5} and config.exclude_identities == ["Ann", "Bob", "Cid"]
    assert config.final_lr_fraction == 0.05 and config.flip is False
    ramp = inspect.signature(lr_range_test).parameters
    lr_find = parser.parse_args(["lr-find", "--data", "d", "--output", "o"])
    assert (lr_find.min_lr, lr_find.max_lr, lr_find.steps) == tuple(
        ramp[name].default for name in ("min_lr", "max_lr", "steps"))


def test_a_usage_error_is_one_line_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", "--data", "x", "--output", "y", "--head", "arcfce"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and len(err) == 1 and err[0].startswith("error: argument --head: invalid choice")


def test_progress_bars_only_on_a_terminal(monkeypatch):
    """fit's "auto" verbosity: a progress bar on a terminal, one line per epoch in a pipe or a log."""
    import io
    import sys

    from keras_arcface.training.run import fit_verbosity

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert fit_verbosity("auto") == 2
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert fit_verbosity("auto") == 1
    assert fit_verbosity(0) == 0
