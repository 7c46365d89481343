"""Outputs appear complete or not at all: the atomic file and staged folder helpers, and the
commands that use them (eval --json)."""

import os
import pathlib
import stat

import pytest

from keras_arcface.files import atomic_path, staged_folder, write_text_atomically


def _leftovers(folder):
    return [p.name for p in pathlib.Path(folder).iterdir() if "partial" in p.name]


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text('{"half": ')
            raise RuntimeError("killed mid-write")
    assert not target.exists() and not _leftovers(tmp_path)
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"  # an earlier complete file survives a failed rewrite
    write_text_atomically(target, "new")
    assert target.read_text() == "new" and not _leftovers(tmp_path)


def test_a_staged_folder_moves_in_only_on_success(tmp_path):
    output = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_folder(output) as staging:
            (staging / "model.onnx").write_text("first format")
            raise RuntimeError("second format failed")
    assert not output.exists() and not _leftovers(tmp_path)
    output.mkdir()
    (output / "kept.txt").write_text("unrelated")
    (output / "model_saved_model").mkdir()
    (output / "model_saved_model" / "stale.pb").write_text("old")
    with staged_folder(output) as staging:
        (staging / "model.onnx").write_text("done")
        (staging / "model_saved_model").mkdir()
        (staging / "model_saved_model" / "saved_model.pb").write_text("new")
    assert (output / "model.onnx").read_text() == "done" and (output / "kept.txt").exists()
    assert [p.name for p in (output / "model_saved_model").iterdir()] == ["saved_model.pb"]
    assert not _leftovers(tmp_path)


def test_eval_json_is_not_half_written_when_the_disk_fills(tmp_path, monkeypatch):
    """save_report (eval --json) writes through a temporary file: a write that fails half-way
    leaves no report a later step could read."""
    from keras_arcface.evaluation.evaluate import save_report

    original = pathlib.Path.write_text

    def half_write(self, text, *args, **kwargs):
        original(self, text[: len(text) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(pathlib.Path, "write_text", half_write)
    with pytest.raises(OSError):
        save_report({"accuracy": 0.5, "pairs": 6000}, tmp_path / "report.json")
    assert not (tmp_path / "report.json").exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_atomic_write_gets_the_mode_the_umask_gives(tmp_path, umask, mode):
    """A temporary file is 0600 whatever the umask; the file renamed into place gets what open() would give."""
    previous = os.umask(umask)
    try:
        write_text_atomically(tmp_path / "out.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == mode
