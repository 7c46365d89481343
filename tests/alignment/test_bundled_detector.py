"""The YuNet detector shipped as package data: the recorded size and sha256, and used by default."""

import hashlib
import re

from keras_arcface.alignment import FaceAligner
from keras_arcface.alignment.detector import BUNDLED_DETECTOR, BUNDLED_DETECTOR_SHA256
from tests.faces import demo_face, photo_of


def test_the_bundled_file_matches_its_recorded_origin():
    data = BUNDLED_DETECTOR.read_bytes()
    readme = (BUNDLED_DETECTOR.parent / "README.md").read_text()
    assert hashlib.sha256(data).hexdigest() == BUNDLED_DETECTOR_SHA256
    assert f"`{BUNDLED_DETECTOR_SHA256}`" in readme
    assert f"| bytes | {len(data):,} |" in readme and re.search(r"licence \| Apache-2\.0", readme)


def test_the_aligner_uses_the_bundled_detector_by_default(monkeypatch):
    monkeypatch.delenv("KERAS_ARCFACE_DETECTOR", raising=False)
    aligner = FaceAligner()
    assert aligner.model_path == str(BUNDLED_DETECTOR)
    face, faces, aligned = aligner.locate(photo_of([demo_face("Grace_Hopper", 1)]))
    assert len(faces) == 1 and face.score > 0.8 and aligned.shape == (112, 112, 3)
