"""Export: every format, parity gates, metadata, float32 rebuilds, errors, the runtime."""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import pytest

from keras_arcface.backbones import MobileFaceNet, get_backbone
from keras_arcface.embedding import load_keras_model
from keras_arcface.export import FORMATS, ParityError, export
from keras_arcface.heads import ArcFaceLayer
from keras_arcface.runtime import FaceEmbedder
from keras_arcface.training.model import build_training_model
from tests.faces import make_face_folder

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export needs TensorFlow")
#: A tiny IResNet (one block a stage): strided convolutions padded inside, BatchNorm, PReLU, Dense.  A real
#: MobileFaceNet goes through export in test_int8.py (int8; every format in the slow tier).
TINY_IRESNET = {"embedding_size": 16, "input_shape": (32, 32, 3), "stage_depths": (1, 1, 1, 1), "base_width": 8}


def _faces(tmp_path, size=32, n=24):
    from keras_arcface.data import FaceFolder

    return FaceFolder.scan(make_face_folder(tmp_path / "faces", identities=4, per_identity=n // 4, size=size),
                           image_size=(size, size)).images


def _tiny_model():
    return get_backbone("iresnet18", **TINY_IRESNET)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(faces, result_of): ``result_of(fmt)`` is export's result for that format of a tiny IResNet whose
    BatchNorm statistics moved, each format exported once for this module when a test first asks for
    it (so each test pays for its own format, not one setup for all six)."""
    tmp_path = tmp_path_factory.mktemp("exported")
    faces = _faces(tmp_path)
    model = _trained_like(_tiny_model(), faces)
    results = {}

    def result_of(fmt):
        if fmt not in results:
            results.update(export(model, [fmt], tmp_path / fmt, faces, name="tiny"))
        return results[fmt]

    return faces, result_of


def _trained_like(model, faces):
    """Move BatchNorm statistics off their initial values, as training would."""
    from keras_arcface.data import preprocess

    for _ in range(3):
        model(preprocess(faces), training=True)
    return model


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_passes_its_gate_and_carries_metadata(exported, fmt):
    faces, result_of = exported
    result = result_of(fmt)
    assert result["min_cosine"] >= FORMATS[fmt].parity_gate, (fmt, result)
    metadata = json.loads(pathlib.Path(result["path"] + ".json").read_text())
    assert metadata["embedding_size"] == 16 and metadata["input_spec"]["size"] == [32, 32]
    assert metadata["parity"]["min_cosine"] == pytest.approx(result["min_cosine"])
    if FORMATS[fmt].family == "TFLite":  # the same facts inside the file, as TFLite metadata
        from keras_arcface.export.tflite_metadata import read_metadata
        from keras_arcface.runtime import InputSpec

        inside = read_metadata(pathlib.Path(result["path"]).read_bytes())
        spec = InputSpec(**metadata["input_spec"])
        assert inside["name"] == "tiny" and inside["custom"]["format"] == fmt
        assert inside["custom"]["input_spec"] == metadata["input_spec"] and inside["custom"]["embedding_size"] == 16
        np.testing.assert_allclose(inside["custom"]["template"], spec.landmarks, atol=1e-5)
        image, = inside["inputs"]
        assert (image["content"], image["colour_space"], image["size"]) == ("image", "RGB", (32, 32))
        assert image["mean"] == [spec.mean] * 3 and image["std"] == [spec.std] * 3
        assert inside["outputs"][0]["content"] == "feature" and inside["min_parser_version"] == "1.5.0"
    if FORMATS[fmt].runtime:
        embedder = FaceEmbedder(result["path"])
        assert embedder.spec.size == (32, 32)  # read back from the sidecar
        assert embedder.embed(faces[:5]).shape == (5, 16)
        if fmt == "onnx":
            assert embedder.fixed_batch is None  # dynamic batch


def test_metadata_is_replaced_whole_and_leaves_every_output_bit_for_bit(exported, tmp_path):
    from keras_arcface.export.formats import write_tflite
    from keras_arcface.export.tflite_metadata import metadata_buffer, read_metadata, with_metadata
    from keras_arcface.runtime import InputSpec

    faces, result_of = exported
    path = pathlib.Path(result_of("tflite_float32")["path"])
    spec = InputSpec(size=(32, 32), mean=0.0, std=1.0, template=[[9, 12], [23, 12], [16, 18], [10, 24], [22, 24]])
    restamped = tmp_path / "restamped.tflite"
    restamped.write_bytes(with_metadata(path.read_bytes(), metadata_buffer(spec, 16, {"name": "again", "t": 0.3})))
    inside = read_metadata(restamped.read_bytes())
    assert inside["name"] == "again" and inside["custom"]["t"] == 0.3 and inside["inputs"][0]["mean"] == [0.0] * 3
    assert inside["custom"]["template"] == [list(point) for point in spec.template]
    assert restamped.read_bytes().count(b"TFLITE_METADATA") == 1  # replaced, not added
    x = faces[:3]
    sidecar_spec = FaceEmbedder(path).spec
    assert np.array_equal(FaceEmbedder(path).embed(x), FaceEmbedder(restamped, spec=sidecar_spec).embed(x))
    with pytest.raises(ValueError, match="NHWC RGB input.*not NHWC BGR"):
        metadata_buffer(InputSpec(colour="BGR"), 16, {})
    bare = write_tflite(_tiny_model(), tmp_path / "bare.tflite", "float32")  # no spec: no metadata
    assert read_metadata(pathlib.Path(bare).read_bytes()) is None


def test_a_bgr_models_tflite_file_takes_rgb_and_its_onnx_file_bgr(tmp_path):
    """TFLite metadata cannot say BGR and MediaPipe feeds RGB: the TFLite file reverses the channels
    first; the ONNX file keeps the model's order.  Both give the Keras model's embeddings."""
    from keras_arcface.export.tflite_metadata import read_metadata
    from keras_arcface.runtime import InputSpec

    faces = _faces(tmp_path)
    spec = InputSpec(size=(32, 32), colour="BGR", mean=0.0, std=1.0)
    results = export(_trained_like(_tiny_model(), faces), ["tflite_float32", "onnx"], tmp_path / "out", faces,
                     name="bgr", input_spec=spec)
    tflite, onnx = FaceEmbedder(results["tflite_float32"]["path"]), FaceEmbedder(results["onnx"]["path"])
    assert (tflite.spec.colour, onnx.spec.colour) == ("RGB", "BGR")
    assert read_metadata(pathlib.Path(results["tflite_float32"]["path"]).read_bytes())["inputs"][0]["colour_space"] \
        == "RGB"
    assert min(r["min_cosine"] for r in results.values()) >= 0.9999
    assert np.sum(tflite.embed(faces) * onnx.embed(faces), axis=1).min() >= 0.9999
    # fed in the wrong order the file would be another model: the flip is real
    assert np.sum(tflite.embed(faces) * FaceEmbedder(results["tflite_float32"]["path"], spec=spec).embed(faces),
                  axis=1).min() < 0.9999


def test_test_time_flip_averages_a_face_and_its_mirror_image(exported):
    """flip=True: l2(e(x) + e(mirror x)), in the runtime's embedder, the Keras one and the loader."""
    from keras_arcface.embedding import load_embedder
    from keras_arcface.runtime import KerasEmbedder, flip_averaged, l2_normalize

    faces, result_of = exported
    path = result_of("onnx")["path"]
    plain, flipped = FaceEmbedder(path), FaceEmbedder(path, flip=True)
    want = l2_normalize(plain.embed(faces[:4]) + plain.embed(faces[:4, :, ::-1]))
    np.testing.assert_allclose(flipped.embed(faces[:4]), want, atol=1e-6)
    np.testing.assert_allclose(flipped.embed(faces[1]), want[1:2], atol=1e-6)  # one face
    assert np.abs(flipped.embed(faces[:4]) - plain.embed(faces[:4])).max() > 1e-3
    np.testing.assert_allclose(flip_averaged(plain.embed, faces[:4]), want, atol=1e-6)
    assert load_embedder(path, flip=True).flip and not load_embedder(path).flip
    keras_model = _tiny_model()
    keras_plain, keras_flipped = KerasEmbedder(keras_model), KerasEmbedder(keras_model, flip=True)
    np.testing.assert_allclose(keras_flipped.embed(faces[:2]),
                               l2_normalize(keras_plain.embed(faces[:2]) + keras_plain.embed(faces[:2, :, ::-1])),
                               atol=1e-6)


def test_training_models_and_mixed_policies_export_the_float32_backbone(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")
    backbone = MobileFaceNet(embedding_size=16, input_shape=(32, 32, 3))
    training = build_training_model(backbone, ArcFaceLayer(4, name="head"))
    keras.config.set_dtype_policy("float32")
    exported = load_keras_model(training)
    assert len(exported.inputs) == 1 and exported.output_shape == (None, 16)
    assert all(layer.dtype_policy.compute_dtype == "float32" for layer in exported._flatten_layers())
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(exported(x)), np.asarray(backbone(x)), rtol=2e-2, atol=2e-2)


def test_a_failed_export_writes_nothing(tmp_path, monkeypatch):
    """The first format passes, the second misses its gate: neither file reaches the output folder,
    and no staging folder is left beside it."""
    faces = _faces(tmp_path)
    model = _tiny_model()
    monkeypatch.setitem(FORMATS, "onnx", dataclasses.replace(FORMATS["onnx"], parity_gate=1.0001))  # impossible
    with pytest.raises(ParityError, match="under the gate.*nothing was written"):
        export(model, ["tflite_float32", "onnx"], tmp_path / "out", faces)
    assert not (tmp_path / "out").exists()
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]


def test_bad_inputs_to_export_and_runtime(tmp_path, exported):
    faces, result_of = exported
    model = _tiny_model()
    with pytest.raises(ValueError, match="aligned crops"):
        export(model, ["onnx"], tmp_path / "o", faces.astype("float32"))
    with pytest.raises(ValueError, match="unknown export format 'coreml'"):
        export(model, ["coreml"], tmp_path / "o", faces)
    assert not (tmp_path / "o").exists()
    embedder = FaceEmbedder(result_of("onnx")["path"])
    with pytest.raises(ValueError, match="aligned 32x32"):
        embedder.embed(np.zeros((1, 40, 40, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        embedder.embed(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="RGB"):
        embedder.embed(np.zeros((1, 32, 32, 4), np.uint8))
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="cannot load"):
        FaceEmbedder(corrupt)


def test_a_model_needing_flex_ops_fails_at_export(tmp_path):
    import tensorflow as tf

    inputs = keras.Input((32, 32, 3))
    # tf.linalg.svd has no TFLite builtin: it would need the Select TF (Flex) delegate
    outputs = keras.layers.Lambda(lambda x: tf.linalg.svd(tf.reshape(x, (-1, 32, 96)), compute_uv=False))(inputs)
    model = keras.Model(inputs, outputs)
    from keras_arcface.export.formats import ExportError, write_tflite

    with pytest.raises(ExportError, match=r"no builtin for: tf\.Svd\. .*Flex"):
        write_tflite(model, tmp_path / "m.tflite", "float32")


def test_export_command_prints_the_parity_table(tmp_path, capsys):
    from keras_arcface.cli import main

    make_face_folder(tmp_path / "faces", identities=3, per_identity=4, size=32)
    _tiny_model().save(tmp_path / "mfn.keras")
    assert main(["export", "--model", str(tmp_path / "mfn.keras"), "--faces", str(tmp_path / "faces"),
                 "--formats", "tflite_float32", "onnx", "-o", str(tmp_path / "out"), "--threshold", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "parity on 12 aligned faces" in out and "tflite_float32" in out and "onnx" in out
    metadata = json.loads((tmp_path / "out" / "model_onnx.onnx.json").read_text())
    assert metadata["threshold"] == 0.3 and metadata["parity"]["min_cosine"] >= 0.9999
    assert FaceEmbedder(tmp_path / "out" / "model_onnx.onnx").threshold == 0.3


def test_export_takes_a_zoo_name(tmp_path, capsys):
    """`export --model <zoo name>`: the card's backbone and input spec, files named after the model."""
    from keras_arcface.cli import main
    from keras_arcface.zoo import model_card

    make_face_folder(tmp_path / "faces", identities=3, per_identity=4, size=112)
    assert main(["export", "--model", "mobilefacenet-192", "--faces", str(tmp_path / "faces"),
                 "--formats", "onnx", "-o", str(tmp_path / "out")]) == 0
    exported = tmp_path / "out" / "mobilefacenet-192_onnx.onnx"
    metadata = json.loads(pathlib.Path(f"{exported}.json").read_text())
    assert metadata["parity"]["min_cosine"] >= 0.9999
    spec = model_card("mobilefacenet-192").input_spec
    assert metadata["input_spec"]["mean"] == spec["mean"] and metadata["input_spec"]["std"] == spec["std"]
    assert FaceEmbedder(exported).embed(np.zeros((1, 112, 112, 3), np.uint8)).shape == (1, 192)
