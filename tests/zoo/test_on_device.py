"""Every TFLite file of the zoo says how to feed it (TFLite metadata that agrees with its card), and
MediaPipe's ImageEmbedder, given the file and an aligned crop and nothing else, embeds as our runtime does.

MediaPipe runs the same Tasks C++ core as its Android, iOS and web SDKs.  It is installed by ``.ci/run``
with ``--no-deps`` (its ``opencv-contrib-python`` requirement would replace ``opencv-python-headless``;
the rest of its requirements are already here): see docs/on-device.md."""

import pathlib

import numpy as np
import pytest

from keras_arcface.export.tflite_metadata import read_metadata
from keras_arcface.formats import FORMATS
from keras_arcface.runtime import FaceEmbedder, InputSpec
from keras_arcface.zoo import read_cards
from tests.faces import demo_crops

ROOT = pathlib.Path(__file__).resolve().parents[2]
CARDS = read_cards(ROOT / "zoo")
TFLITE_FILES = [pytest.param(name, fmt, id=f"{name}-{fmt}") for name, card in sorted(CARDS.items())
                for fmt in card.artifacts if FORMATS.get(fmt) and FORMATS[fmt].family == "TFLite"]


def _path(name, fmt):
    return ROOT / "saved_models" / name / CARDS[name].artifact(fmt).file


@pytest.mark.parametrize("name, fmt", TFLITE_FILES)
def test_every_zoo_tflite_file_carries_its_cards_facts(name, fmt):
    card = CARDS[name]
    inside = read_metadata(_path(name, fmt).read_bytes())
    assert inside is not None, f"{name} {fmt} has no TFLite metadata: python scripts/stamp_zoo_tflite.py {name}"
    spec = InputSpec(**card.file_spec(fmt))
    assert spec == FORMATS[fmt].file_spec(InputSpec(**card.input_spec))  # the format's colour order
    custom = inside["custom"]
    assert (inside["name"], inside["version"], custom["format"]) == (name, card.version, fmt)
    assert InputSpec(**custom["input_spec"]) == spec and custom["embedding_size"] == card.embedding_size
    np.testing.assert_allclose(custom["template"], spec.landmarks, atol=1e-5)
    thresholds = card.thresholds(fmt)
    assert custom["threshold"] == thresholds["threshold"] and custom["far_thresholds"] == thresholds["far"]
    assert custom["commercial_use"] == card.commercial_use and card.licence["weights"] in inside["licence"]
    image, = inside["inputs"]
    assert (image["colour_space"], image["size"]) == ("RGB", tuple(spec.size))
    assert image["mean"] == pytest.approx([spec.mean] * 3) and image["std"] == pytest.approx([spec.std] * 3)
    assert inside["outputs"][0]["content"] == "feature"


def _aligned_crops(spec):
    """The 8 demo faces as the model's aligned crops."""
    return spec.from_arcface_crops(demo_crops()[1])


@pytest.mark.parametrize("name, fmt", TFLITE_FILES)
def test_mediapipe_image_embedder_loads_each_file_as_is_and_embeds_as_our_runtime(name, fmt):
    mp = pytest.importorskip("mediapipe", reason="mediapipe is not installed: .ci/run installs it "
                                                 "(pip install --no-deps mediapipe, docs/on-device.md)")
    from mediapipe.tasks.python import BaseOptions, vision

    path = _path(name, fmt)
    ours = FaceEmbedder(path, spec=InputSpec(**CARDS[name].file_spec(fmt)))
    crops = _aligned_crops(ours.spec)
    assert len(crops) == 8
    options = vision.ImageEmbedderOptions(base_options=BaseOptions(model_asset_path=str(path)), l2_normalize=True)
    with vision.ImageEmbedder.create_from_options(options) as embedder:  # no preprocessing of ours
        theirs = np.stack([embedder.embed(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(c)))
                           .embeddings[0].embedding for c in crops])
    cosines = np.sum(theirs * ours.embed(crops), axis=1) / np.linalg.norm(theirs, axis=1)
    gate = 0.9999 if FORMATS[fmt].parity_gate >= 0.999 else FORMATS[fmt].parity_gate
    assert cosines.min() >= gate, (name, fmt, cosines)


def test_a_tflite_file_alone_is_fed_as_its_metadata_says(tmp_path):
    """No sidecar, no name the runtime knows: the runtime reads the input spec from the file itself (the
    default model's TFLite file takes 128x128 RGB on Intel's template, unlike keras-arcface's default)."""
    name = "face-reidentification-retail-0095"
    card = CARDS[name]
    alone = tmp_path / "model.tflite"
    alone.write_bytes(_path(name, "tflite_float16").read_bytes())
    embedder = FaceEmbedder(alone)
    assert embedder.spec == InputSpec(**card.file_spec("tflite_float16")) != InputSpec()
    crops = _aligned_crops(embedder.spec)
    reference = FaceEmbedder(_path(name, "tflite_float16"), spec=embedder.spec).embed(crops)
    assert np.array_equal(embedder.embed(crops), reference)
    (tmp_path / "bare.tflite").write_bytes(b"not a model")
    from keras_arcface.runtime.tflite_metadata import tflite_input_spec

    assert tflite_input_spec(tmp_path / "bare.tflite") is None
