"""OpenVINO IR sources: an IR that openvino writes from a random-weight mobilefacenet_se (BatchNorm
folded into convolution biases, weights compressed to float16, as Intel's IRs are), converted under
the parity gate; a wrong backbone named at its first differing layer; broken files; with ../shared,
Intel's face-reidentification-retail-0095."""

import json
import pathlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_arcface.backbones import get_backbone
from keras_arcface.cli import main
from keras_arcface.convert import ConversionError, build_converted, convert
from keras_arcface.convert.convert import parity
from keras_arcface.embedding import load_keras_model
from keras_arcface.runtime import FaceEmbedder
from tests.conftest import SHARED_DATA
from tests.convert.graphs import keras_to_onnx, randomise
from tests.faces import make_face_folder

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the converter's tests run once, on the TensorFlow test run")

TINY = dict(embedding_size=16, input_shape=(32, 32, 3))
INTEL_IR = SHARED_DATA.parent / "models" / "face-reidentification-retail-0095_fp16.xml"


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    """(the Keras model, its IR, a folder of 32x32 faces)."""
    import openvino

    folder = tmp_path_factory.mktemp("ir")
    model = randomise(get_backbone("mobilefacenet_se", **TINY))
    source = keras_to_onnx(model, folder / "tiny.onnx", fold_batchnorm=True, normalise=False)
    path = folder / "tiny.xml"
    openvino.save_model(openvino.convert_model(str(source)), str(path), compress_to_fp16=True)
    (folder / "tiny.xml.json").write_text(json.dumps({"input_spec": {
        "size": [32, 32], "layout": "NCHW", "colour": "BGR", "mean": 0.0, "std": 1.0}}))
    faces = make_face_folder(folder / "faces", identities=4, per_identity=6, size=32)
    return model, path, faces


def test_an_ir_converts_under_the_parity_gate_with_its_float16_weights(tmp_path, ir):
    model, path, faces = ir
    config = convert(path, "mobilefacenet_se", tmp_path / "out", faces, num_faces=24)
    assert config["parity"]["min_cosine"] >= 0.9999 and config["embedding_size"] == 16
    assert config["converted_from"]["format"] == "xml" and config["converted_from"]["weights_file"] == "tiny.bin"
    assert config["input_spec"]["colour"] == "BGR" and config["input_spec"]["layout"] == "NHWC"
    converted = load_keras_model(tmp_path / "out")
    ours = {w.path: ops.convert_to_numpy(w) for w in converted.weights}
    for weight in model.weights:  # squeeze-excitation's kernels are stored as they are, rounded to float16
        if weight.path.endswith("kernel") and "_se_" in weight.path:
            np.testing.assert_allclose(ours[weight.path], ops.convert_to_numpy(weight), rtol=1e-3, atol=1e-4)


def test_an_ir_with_float32_weights_converts_back_to_the_keras_model(tmp_path, ir):
    """End to end against the network the IR was written from (with float32 weights: a random network
    fed raw pixels turns float16's rounding into visible differences, which the gate above is about)."""
    import openvino

    model, path, faces = ir
    full = tmp_path / "full.xml"
    openvino.save_model(openvino.convert_model(str(path.with_suffix(".onnx"))), str(full), compress_to_fp16=False)
    (tmp_path / "full.xml.json").write_text(path.with_name("tiny.xml.json").read_text())
    converted, _, _ = build_converted(full, "mobilefacenet_se")
    x = np.random.default_rng(0).uniform(0, 255, size=(3, 32, 32, 3)).astype("float32")
    want, got = ops.convert_to_numpy(model(x)), ops.convert_to_numpy(converted(x))
    cosines = np.sum(want * got, 1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert cosines.min() > 0.99999


def test_the_runtime_runs_an_ir_in_float32(ir):
    model, path, faces = ir
    from keras_arcface.data import sample_faces

    crops = sample_faces(faces, 8, image_size=(32, 32))
    embeddings = FaceEmbedder(path).embed(crops)
    assert embeddings.shape == (8, 16) and np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)


def test_an_ir_that_does_not_fit_names_the_first_differing_layer(ir):
    _, path, _ = ir
    # MobileFaceNet has no input BatchNorm: its stem convolution meets the IR's image scale and shift
    with pytest.raises(ConversionError, match=r"Keras layer 'stem_conv' \(conv, kernel \(3, 3, 3, 64\)\).*"
                                              r"batch_norm"):
        build_converted(path, "mobilefacenet", embedding_size=16)
    # with every option but squeeze-excitation, the next block's expansion meets the IR's SE block
    with pytest.raises(ConversionError, match=r"Keras layer 'stage0_block1_expand_conv'.*'stage0_block0_se_reduce"):
        build_converted(path, "mobilefacenet", embedding_size=16, backbone_params={
            "input_batch_norm": True, "shared_prelu": True, "embedding_batch_norm": False})


def test_a_truncated_or_missing_weights_file_is_named(tmp_path, ir):
    _, path, _ = ir
    (tmp_path / "cut.xml").write_bytes(path.read_bytes())
    (tmp_path / "cut.bin").write_bytes(path.with_suffix(".bin").read_bytes()[:1000])
    with pytest.raises(ConversionError, match=r"not a readable OpenVINO IR \(Incorrect weights in bin file!\); "
                                              r"cut.bin may be truncated"):
        build_converted(tmp_path / "cut.xml", "mobilefacenet_se")
    (tmp_path / "cut.bin").unlink()
    with pytest.raises(ConversionError, match=r"its weights file cut.bin is missing"):
        build_converted(tmp_path / "cut.xml", "mobilefacenet_se")


def test_the_command_converts_an_ir(tmp_path, ir, capsys):
    _, path, faces = ir
    assert main(["convert", str(path), "--backbone", "mobilefacenet_se", "--faces", str(faces), "--num-faces", "12",
                 "-o", str(tmp_path / "out")]) == 0
    assert "minimum cosine" in capsys.readouterr().out
    assert main(["convert", str(path), "--backbone", "sface", "--faces", str(faces), "-o", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


@pytest.mark.shared_data
def test_intels_ir_converts_with_exact_parity_on_lfw_faces_mapped_to_its_template():
    if not INTEL_IR.is_file():
        pytest.skip(f"needs ../shared/models/{INTEL_IR.name}")
    from keras_arcface.alignment import sample_faces_for

    model, spec, source_spec = build_converted(INTEL_IR, "mobilefacenet_se")
    assert model.output_shape == (None, 256) and spec.size == (128, 128) and spec.template == source_spec.template
    faces = sample_faces_for(SHARED_DATA / "lfw" / "aligned", 48, source_spec)
    assert faces.shape == (48, 128, 128, 3)
    assert parity(INTEL_IR, model, spec, source_spec, faces)[0] >= 0.9999


@pytest.mark.shared_data
def test_verify_aligns_photos_onto_intels_template_for_its_ir():
    """Raw photos through FaceVerifier with Intel's IR: 128x128 crops on its template, the same person
    scored far above two different people."""
    if not INTEL_IR.is_file():
        pytest.skip(f"needs ../shared/models/{INTEL_IR.name}")
    from keras_arcface.verification import FaceVerifier
    from tests.faces import demo_face, photo_of

    verifier = FaceVerifier(model=str(INTEL_IR), threshold=0.3)
    hopper, again = photo_of([demo_face("Grace_Hopper", 1)]), photo_of([demo_face("Grace_Hopper", 3)], scale=2.5)
    same = verifier.verify(hopper, again)
    different = verifier.verify(hopper, photo_of([demo_face("Eileen_Collins", 2)]))
    assert same.faces[0].aligned.shape == (128, 128, 3)
    assert same.similarity > 0.5 and different.similarity < 0.25 and same.same and not different.same


def test_exporting_a_converted_folder_keeps_its_input_spec(tmp_path, ir, capsys):
    """`export --model <folder>` reads the folder's recorded spec (BGR, raw pixels here): the files'
    metadata says so and their embeddings equal the IR's on the same faces."""
    _, path, faces = ir
    convert(path, "mobilefacenet_se", tmp_path / "converted", faces, num_faces=12)
    assert main(["export", "--model", str(tmp_path / "converted"), "--faces", str(faces), "--num-faces", "12",
                 "--formats", "onnx", "-o", str(tmp_path / "exported")]) == 0
    onnx = next((tmp_path / "exported").glob("*.onnx"))
    metadata = json.loads(pathlib.Path(f"{onnx}.json").read_text())
    assert {key: metadata["input_spec"][key] for key in ("colour", "mean", "std")} == {
        "colour": "BGR", "mean": 0.0, "std": 1.0}
    from keras_arcface.data import sample_faces

    crops = sample_faces(faces, 8, image_size=(32, 32))
    cosines = np.sum(FaceEmbedder(onnx).embed(crops) * FaceEmbedder(path).embed(crops), axis=1)
    assert cosines.min() > 0.9999
