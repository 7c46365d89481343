"""The format table: every entry's writer and reader exist, and the runtime, the cards and the command line
derive their lists from it."""

import importlib

import pytest

from keras_arcface.formats import FORMATS, READ_ONLY_FORMATS, RUNTIME_SUFFIXES, is_runtime_file
from keras_arcface.zoo import ARTIFACT_FORMATS


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_names_a_writer_and_a_reader_that_exist(name):
    fmt = FORMATS[name]
    assert fmt.name == name and 0.9 <= fmt.parity_gate <= 1.0
    for reference in (fmt.writer, fmt.reader):
        module, _, function = reference.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), reference
    if fmt.runtime:
        assert fmt.suffix, f"{name}: a file the runtime reads needs a suffix"
        assert importlib.import_module(fmt.reader.partition(":")[0]).__name__.startswith("keras_arcface.runtime")


def test_formats_sharing_a_suffix_share_a_reader_and_lists_derive_from_the_table():
    for suffix, fmt in RUNTIME_SUFFIXES.items():
        assert {f.reader for f in FORMATS.values() if f.suffix == suffix} == {fmt.reader}
    assert set(ARTIFACT_FORMATS) == {"keras"} | {name for name, fmt in FORMATS.items() if fmt.runtime}
    assert is_runtime_file("m.ONNX") and is_runtime_file("a/b.tflite") and not is_runtime_file("m.keras")


def test_the_runtime_names_the_suffixes_it_reads(tmp_path):
    from keras_arcface.errors import InputError
    from keras_arcface.runtime import FaceEmbedder

    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(InputError, match=r"expected \.onnx or \.tflite or \.xml$"):
        FaceEmbedder(tmp_path / "m.pt")


@pytest.mark.parametrize("suffix", sorted(READ_ONLY_FORMATS))
def test_read_only_formats_have_a_runtime_reader_and_no_shared_suffix(suffix):
    fmt = READ_ONLY_FORMATS[suffix]
    assert fmt.suffix == suffix and suffix not in RUNTIME_SUFFIXES and is_runtime_file(f"m{suffix.upper()}")
    module, _, function = fmt.reader.partition(":")
    assert module.startswith("keras_arcface.runtime") and callable(getattr(importlib.import_module(module), function))
    assert fmt.name not in ARTIFACT_FORMATS  # the zoo ships only what we write and check


def test_an_ir_without_openvino_installed_names_the_extra(tmp_path, monkeypatch):
    import sys

    from keras_arcface.errors import InputError
    from keras_arcface.runtime import FaceEmbedder

    (tmp_path / "m.xml").write_text("<net/>")
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(InputError, match=r"needs the openvino package: pip install 'keras-arcface\[convert\]'"):
        FaceEmbedder(tmp_path / "m.xml")
