"""The README's Python code blocks run, in order, in one namespace."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.backend_neutral
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ARCFACE_CACHE", str(tmp_path / "zoo-cache"))  # the zoo block downloads
    blocks = python_blocks()
    assert len(blocks) >= 2
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["vectors"].shape == (4, 16)
    assert namespace["model"].loss.head is namespace["head"]
    assert namespace["path"] == tmp_path / "zoo-cache" / namespace["name"] / namespace["path"].name
    from keras_arcface.zoo import default_model

    assert namespace["name"] == default_model()  # the README shows the default model


def test_readme_gives_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert 'pip install -e ".[dev]" && keras-arcface demo' in text
    assert "python -m pytest" in text
