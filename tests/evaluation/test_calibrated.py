"""The lfw-dev style report: a threshold chosen on one pairs file, applied once to another."""

import numpy as np

from keras_arcface.evaluation import evaluate_calibrated
from keras_arcface.runtime import InputSpec
from tests.faces import write_image


class ColourEmbedder:
    """Embeds a face by its mean colour: identities differ by colour, so scores are known."""

    spec = InputSpec(size=(16, 16))

    def embed(self, faces, batch_size=64):
        x = faces.reshape(len(faces), -1, 3).mean(axis=1) - 127.0
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_threshold_comes_from_the_calibration_pairs_only(tmp_path):
    colours = {"Ann": (250, 10, 10), "Bob": (10, 250, 10), "Cid": (200, 60, 10)}
    for name, colour in colours.items():
        for n in (1, 2):
            write_image(tmp_path / "faces" / name / f"{name}_{n:04d}.jpg",
                        np.full((16, 16, 3), colour, np.uint8) + n)
    (tmp_path / "calibration.txt").write_text("2\nAnn\t1\t2\nBob\t1\t2\nAnn\t1\tBob\t1\nBob\t2\tAnn\t2\n")
    # Ann and Cid are close in colour: above any threshold that separates Ann from Bob
    (tmp_path / "test.txt").write_text("Cid\t1\t2\nAnn\t1\tCid\t1\n")
    report = evaluate_calibrated(ColourEmbedder(), tmp_path / "calibration.txt", tmp_path / "test.txt",
                                 tmp_path / "faces")
    assert report["calibration_pairs"] == 4 and report["test_pairs"] == 2
    assert report["calibration_accuracy"] == 1.0
    # the Ann-Bob threshold is low, so the test's Ann-Cid pair is called "same": 1 of 2 right
    assert report["threshold"] < 0.5 and report["accuracy"] == 0.5
