"""The README's Python code blocks run, in order, in one namespace; so do each page's of docs/ and
CONTRIBUTING.md (one namespace per page); the README stays the short first page."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "CONTRIBUTING.md"]


def python_blocks(page=README):
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


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


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_python_blocks_of_the_docs_run(page, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ARCFACE_CACHE", str(tmp_path / "zoo-cache"))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in python_blocks(page):
        exec(compile(block, str(page), "exec"), namespace)  # noqa: S102


def test_readme_is_the_short_first_page_and_links_resolve():
    """The README keeps what a user needs first; every relative link of the README, docs/ and
    CONTRIBUTING.md points at a file that exists."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 400
    for page in [README, *PAGES]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
