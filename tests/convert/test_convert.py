"""The checkpoint converter: PyTorch/MXNet-style ONNX and TFLite sources onto our backbones with
parity, errors naming the first layer that does not fit, nothing written on failure, the command."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.backbones import IResNet, MobileFaceNet, SFace
from keras_arcface.cli import main
from keras_arcface.convert import ConversionError, ParityError, build_converted, convert
from keras_arcface.convert.convert import parity
from keras_arcface.embedding import load_keras_model
from tests.conftest import SHARED_DATA
from tests.convert.graphs import keras_to_onnx, randomise
from tests.faces import make_face_folder

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the converter's tests run once, on the TensorFlow test run")

TINY_SFACE = dict(embedding_size=16, input_shape=(32, 32, 3), width=0.125)
TINY_IRESNET = dict(embedding_size=16, input_shape=(32, 32, 3), stage_depths=(2, 1, 1, 1), base_width=4)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = make_face_folder(tmp_path_factory.mktemp("faces") / "faces", identities=4, per_identity=6, size=32)
    from keras_arcface.data import sample_faces

    return folder, sample_faces(folder, 24, image_size=(32, 32))


def _sidecar(path, **spec):
    (path.parent / (path.name + ".json")).write_text(json.dumps({"input_spec": {"size": [32, 32], **spec}}))


def test_sface_graph_converts_with_its_normalisation_and_epsilons(tmp_path, faces):
    """SFace's layout: Sub/Mul in the graph, BatchNorm epsilon 1e-3 / 2e-5, NCHW flatten into Gemm."""
    source = keras_to_onnx(randomise(SFace(**TINY_SFACE)), tmp_path / "sface.onnx", source_epsilon=1e-5)
    _sidecar(source, layout="NCHW", mean=0.0, std=1.0)
    config = convert(source, "sface", tmp_path / "out", faces[1], backbone_params={"width": 0.125})
    assert config["parity"]["min_cosine"] >= 0.9999 and config["embedding_size"] == 16
    # the random network tells faces apart, so the parity figure means something
    from keras_arcface.runtime import FaceEmbedder

    embeddings = FaceEmbedder(source).embed(faces[1])
    assert np.mean((embeddings @ embeddings.T)[np.triu_indices(len(embeddings), 1)]) < 0.95
    assert config["input_spec"] == {"size": [32, 32], "layout": "NHWC", "colour": "RGB", "mean": 127.5, "std": 128.0}
    assert config["converted_from"]["sha256"] and config["converted_from"]["format"] == "onnx"
    model = load_keras_model(tmp_path / "out")  # the folder loads like a training run
    assert isinstance(model, SFace) and model.width == 0.125


def test_insightface_iresnet_graph_with_folded_batchnorm(tmp_path, faces):
    """arcface_torch's export: conv+BN folded into biased convolutions, standalone BN before each
    block's first conv, downsample shortcuts, BN on the flattened features, no normalisation in the
    graph ((x - 127.5) / 127.5 outside), stage depths (2, 1, 1, 1): every block kind."""
    source = keras_to_onnx(randomise(IResNet(**TINY_IRESNET)), tmp_path / "w600k_r50.onnx", fold_batchnorm=True,
                           normalise=False)
    _sidecar(source, layout="NCHW", mean=127.5, std=127.5)
    params = {"stage_depths": [2, 1, 1, 1], "base_width": 4}
    config = convert(source, "iresnet18", tmp_path / "out", faces[1], backbone_params=params)
    assert config["parity"]["min_cosine"] >= 0.9999
    assert (config["input_spec"]["mean"], config["input_spec"]["std"]) == (127.5, 127.5)


def test_mobilefacenet_graph_with_residuals_and_folded_batchnorm(tmp_path, faces):
    source = keras_to_onnx(randomise(MobileFaceNet(embedding_size=16, input_shape=(32, 32, 3))),
                           tmp_path / "mfn.onnx", fold_batchnorm=True, normalise=False)
    _sidecar(source, layout="NCHW", mean=127.0, std=128.0)
    model, spec, source_spec = build_converted(source, "mobilefacenet")
    assert model.output_shape == (None, 16) and spec.mean == 127.0
    assert parity(source, model, spec, source_spec, faces[1])[0] >= 0.9999


def test_tflite_with_tensorflow_padding_and_separable_pointwise(tmp_path, faces):
    """A TFLite file (BatchNorm folded by the converter, PRELU ops) of the MobileFaceNet_TF layout."""
    from keras_arcface.export.formats import write_tflite

    params = {"padding": "same", "separable_pointwise": True}
    original = randomise(MobileFaceNet(embedding_size=16, input_shape=(32, 32, 3), **params))
    source = write_tflite(original, tmp_path / "mfn.tflite", "float32")
    _sidecar(source, layout="NHWC", mean=127.5, std=128.0)
    config = convert(source, "mobilefacenet", tmp_path / "out", faces[1], backbone_params=params)
    assert config["parity"]["min_cosine"] >= 0.9999
    # the same file onto PyTorch-style padding fits every shape but not the arithmetic: refused
    with pytest.raises(ParityError, match="under the gate"):
        convert(source, "mobilefacenet", tmp_path / "wrong", faces[1], backbone_params={"separable_pointwise": True})
    assert not (tmp_path / "wrong").exists()


def test_a_source_that_does_not_fit_names_the_first_differing_layer(tmp_path, faces):
    source = keras_to_onnx(randomise(SFace(**TINY_SFACE)), tmp_path / "sface.onnx")
    with pytest.raises(ConversionError, match=r"Keras layer 'stem_conv' \(conv, kernel \(3, 3, 3, 64\)\).*"
                                              r"conv 'conv1_conv' \(kernel \(3, 3, 3, 4\)\)"):
        build_converted(source, "mobilefacenet", embedding_size=16, backbone_params={})
    with pytest.raises(ConversionError, match="more weighted layer"):  # a shallower network of the same kind
        _truncated_backbone(source)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(source.read_bytes()[:2000])
    with pytest.raises(ConversionError, match="not a readable ONNX model"):
        build_converted(truncated, "sface")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(ConversionError, match="not a readable TFLite model"):
        build_converted(broken, "mobilefacenet")


def _truncated_backbone(source):
    """SFace's weights onto a backbone with fewer layers: MobileFaceNet's stem has the same shape."""
    from keras_arcface.convert import assign_weights, read_onnx

    layers, _ = read_onnx(source)
    small = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.ZeroPadding2D(1),
                              keras.layers.Conv2D(4, 3, use_bias=False), keras.layers.BatchNormalization(epsilon=1e-3)])
    assign_weights(small, layers)


def test_the_command_converts_and_fails_in_one_line(tmp_path, faces, capsys):
    source = keras_to_onnx(randomise(SFace(**TINY_SFACE)), tmp_path / "sface.onnx")
    _sidecar(source, layout="NCHW", mean=0.0, std=1.0)
    folder = str(faces[0])
    assert main(["convert", str(source), "--backbone", "sface", "--backbone-params", '{"width": 0.125}',
                 "--faces", folder, "--num-faces", "12", "-o", str(tmp_path / "out")]) == 0
    assert "minimum cosine" in capsys.readouterr().out
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    assert ops.convert_to_numpy(load_keras_model(tmp_path / "out")(x)).shape == (2, 16)
    assert main(["convert", str(source), "--backbone", "mobilefacenet", "--faces", folder,
                 "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "stem_conv" in err[0]
    assert not (tmp_path / "bad").exists()


def test_float16_weights_halve_the_file_and_keep_parity(tmp_path, faces):
    source = keras_to_onnx(randomise(SFace(**TINY_SFACE)), tmp_path / "sface.onnx")
    _sidecar(source, layout="NCHW", mean=0.0, std=1.0)
    full = convert(source, "sface", tmp_path / "f32", faces[1], backbone_params={"width": 0.125})
    half = convert(source, "sface", tmp_path / "f16", faces[1], backbone_params={"width": 0.125},
                   weights_dtype="float16")
    assert half["parity"]["min_cosine"] >= 0.9999 and full["parity"]["min_cosine"] >= half["parity"]["min_cosine"]
    import h5py

    def float_dtypes(folder):
        found = set()
        with h5py.File(tmp_path / folder / "backbone.weights.h5") as handle:
            handle.visititems(lambda _, item: found.add(str(item.dtype)) if isinstance(item, h5py.Dataset)
                              and item.dtype.kind == "f" else None)
        return found

    assert float_dtypes("f32") == {"float32"} and float_dtypes("f16") == {"float16"}
    sizes = [(tmp_path / d / "backbone.weights.h5").stat().st_size for d in ("f32", "f16")]
    assert sizes[1] < sizes[0]  # (the real SFace file: 38.9 MB -> 19.6 MB; here HDF5's overhead dominates)
    assert load_keras_model(tmp_path / "f16").weights[0].dtype == "float32"


REAL = [("face_recognition_sface_2021dec_fp32_ort.onnx", "sface", {}, 128),
        ("MobileFaceNet.tflite", "mobilefacenet", {"padding": "same", "separable_pointwise": True}, 192),
        ("fr_feature.onnx", "mobilefacenet", {}, 512)]


@pytest.mark.shared_data
@pytest.mark.parametrize("file, backbone, params, size", REAL, ids=[r[0] for r in REAL])
def test_the_shared_models_convert_with_exact_parity(file, backbone, params, size):
    source = SHARED_DATA.parent / "models" / file
    if not source.is_file():
        pytest.skip(f"needs ../shared/models/{file}")
    from keras_arcface.data import sample_faces

    lfw_faces = sample_faces(SHARED_DATA / "lfw" / "aligned", 48)
    model, spec, source_spec = build_converted(source, backbone, params)
    assert model.output_shape == (None, size)
    assert parity(source, model, spec, source_spec, lfw_faces)[0] >= 0.9999
