"""The face-verification page (web/) in a real browser: Debian's headless Chromium, driven by Selenium, on the
page served from this machine (scripts/serve_web.py).  The page detects (YuNet on onnxruntime-web), aligns
(web/face.js) and embeds (LiteRT.js on the default model's TFLite file, onnxruntime-web on its ONNX file) on
its own; each step is compared with the Python runtime's."""

import importlib.util
import os
import pathlib

import numpy as np
import pytest

from tests.faces import demo_crops, demo_face, jpeg_bytes, photo_of

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("serve_web", ROOT / "scripts" / "serve_web.py")
serve_web = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_web)

_missing = next((reason for absent, reason in (
    (serve_web.browser() is None,
     "Chromium and chromedriver are not installed (apt-get install chromium chromium-driver; .ci/run does)"),
    (not (ROOT / "web" / "node_modules" / "onnxruntime-web").is_dir(),
     "web/node_modules is missing (npm ci --prefix web; .ci/run does)"),
    (importlib.util.find_spec("selenium") is None, "selenium is not installed (the dev extra has it)"),
) if absent), None)
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")
DEMO = ROOT / "keras_arcface" / "demo_data"
RUNTIMES = ("litert", "onnx")
#: The aligned crop the page makes from a photo against Python's: mean and largest absolute difference in
#: grey levels (0-255) over the crop's pixels and channels.
CROP_MEAN_LEVELS, CROP_MAX_LEVELS = 0.5, 3


def _photos():
    """Photos of one face each (a demo crop enlarged on a grey canvas), as JPEG bytes by name; the large one is
    shrunk for detection (longer side over 800) and its face shrunk by area averaging before the warp."""
    photos = {f"photo_{name}_{n}.jpg": jpeg_bytes(photo_of([demo_face(name, n)], size=(360, 480), scale=1.5))
              for name in ("Grace_Hopper", "Eileen_Collins") for n in (1, 2)}
    photos["photo_large_Grace_Hopper_3.jpg"] = jpeg_bytes(photo_of([demo_face("Grace_Hopper", 3)], size=(900, 1200),
                                                                   scale=5.0))
    return photos


def _model_crops(spec):
    """The demo crops as Python maps them onto the model's template, as PNG bytes by name."""
    import cv2

    paths, faces = demo_crops()
    return {f"model_crops/{path.stem}.png": cv2.imencode(".png", crop[..., ::-1])[1].tobytes()
            for path, crop in zip(paths, spec.from_arcface_crops(faces))}


@pytest.fixture(scope="module")
def server():
    from keras_arcface.runtime import InputSpec
    from keras_arcface.zoo import default_model, model_card

    crops = {f"crops/{path.name}": path for path in demo_crops()[0]}
    # the card's crop size and template: every file of the model's (only a file's colour order may differ)
    model_crops = _model_crops(InputSpec(**model_card(default_model()).input_spec))
    server = serve_web.start_server(0, extra={**crops, **model_crops, **_photos()})
    yield server
    server.shutdown()


@pytest.fixture(scope="module", params=RUNTIMES)
def page(server, request):
    driver = serve_web.open_page(f"http://127.0.0.1:{server.server_address[1]}/?runtime={request.param}")
    yield request.param, driver, server.config
    driver.quit()


def _python_embedder(config, runtime):
    from keras_arcface.zoo import load_model

    return load_model(config["model"], config["files"]["tflite" if runtime == "litert" else "onnx"]["format"])


def test_the_pages_embeddings_and_verdicts_equal_the_python_runtimes(page):
    """The model alone: the page embeds the 8 demo faces as the Python runtime does, given the same pixels
    (the crops Python maps onto the model's template, as PNG); then the 24 demo pairs from the bundled JPEG
    crops (the browser decodes and maps them itself): the same verdicts."""
    from keras_arcface.evaluation.pairs import read_pairs

    runtime, driver, config = page
    ours = _python_embedder(config, runtime)
    paths, faces = demo_crops()
    assert len(paths) == 8
    crops = ours.spec.from_arcface_crops(faces)
    theirs = np.array([serve_web.page_call(driver, "window.kerasArcface.embedAlignedCrop(args[0])",
                                           f"models/model_crops/{path.stem}.png") for path in paths])
    cosines = np.sum(theirs * ours.embed(crops), axis=1)
    assert cosines.min() >= 0.9999, cosines  # float files: both runtimes' gate
    pairs = read_pairs(DEMO / "pairs.txt", DEMO / "faces")
    assert len(pairs) == 24
    python = dict(zip(map(str, paths), ours.embed(faces)))
    verdicts = []
    for pair in pairs:
        answer = serve_web.page_call(driver, "window.kerasArcface.compareAlignedCrops(args[0], args[1])",
                                     f"models/crops/{pathlib.Path(pair.left).name}",
                                     f"models/crops/{pathlib.Path(pair.right).name}")
        similarity = float(python[pair.left] @ python[pair.right])
        assert answer["similarity"] == pytest.approx(similarity, abs=0.01)  # the browser decodes the JPEG
        verdicts.append((answer["same"], similarity >= ours.threshold, pair.same))
    assert [page for page, _, _ in verdicts] == [python for _, python, _ in verdicts]
    assert sum(page == truth for page, _, truth in verdicts) >= 22  # the demo's pairs are mostly called right


def test_the_aligned_crop_from_a_photo_is_within_a_few_grey_levels_of_pythons(page):
    from keras_arcface.alignment import FaceAligner
    from keras_arcface.data.images import decode_image
    from keras_arcface.runtime import InputSpec

    runtime, driver, config = page
    spec = InputSpec(**config["files"]["tflite" if runtime == "litert" else "onnx"]["spec"])
    aligner = FaceAligner(spec=spec)
    for name, data in _photos().items():
        found = serve_web.page_call(driver, "window.kerasArcface.alignedCrop(args[0])", f"models/{name}")
        image = decode_image(data)
        python, = aligner.faces(image)
        np.testing.assert_allclose(found["landmarks"], python.landmarks, atol=0.01)  # the same detection
        crop = np.asarray(found["crop"], np.float64).reshape(python.aligned.shape)
        difference = np.abs(crop - python.aligned)
        assert difference.mean() <= CROP_MEAN_LEVELS and difference.max() <= CROP_MAX_LEVELS, \
            (name, difference.mean(), difference.max())


def test_two_photos_verified_in_the_page_with_a_screenshot(page, tmp_path):
    from keras_arcface.verification import FaceVerifier

    runtime, driver, config = page
    result = serve_web.page_call(driver, "window.kerasArcface.verify(args[0], args[1]).then((r) => "
                                         "({similarity: r.similarity, same: r.same}))",
                                 "models/photo_Grace_Hopper_1.jpg", "models/photo_Grace_Hopper_2.jpg")
    assert result["same"] and driver.find_element("id", "verdict").text == "same person"
    different = serve_web.page_call(driver, "window.kerasArcface.verify(args[0], args[1]).then((r) => r.same)",
                                    "models/photo_Grace_Hopper_1.jpg", "models/photo_Eileen_Collins_1.jpg")
    assert different is False and driver.find_element("id", "verdict").text == "different people"
    photos = _photos()
    left, right = tmp_path / "a.jpg", tmp_path / "b.jpg"
    left.write_bytes(photos["photo_Grace_Hopper_1.jpg"])
    right.write_bytes(photos["photo_Grace_Hopper_2.jpg"])
    python = FaceVerifier(model=_python_embedder(config, runtime)).verify(str(left), str(right))
    assert python.same and result["similarity"] == pytest.approx(python.similarity, abs=0.01)
    serve_web.page_call(driver, "window.kerasArcface.verify(args[0], args[1]).then(() => true)",
                        "models/photo_Grace_Hopper_1.jpg", "models/photo_Grace_Hopper_2.jpg")
    # everything the page fetched since it opened (scripts, WASM, models, photos) came from its own origin
    origin = f"http://127.0.0.1:{driver.current_url.split(':')[2].split('/')[0]}/"
    urls = serve_web.requested_urls(driver)
    assert any(url.endswith(".wasm") for url in urls) and any("models/" in url for url in urls)
    assert [url for url in urls if not url.startswith((origin, "blob:", "data:"))] == []
    folder = pathlib.Path(os.environ.get("KERAS_ARCFACE_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"web_verify_{runtime}.png"
    assert driver.save_screenshot(str(shot))
    from keras_arcface.data.images import read_image

    image = read_image(shot)
    assert image.shape[0] > 300 and image.std() > 10  # a page, not a blank


def test_the_page_written_as_a_folder_runs_from_a_plain_static_server(tmp_path):
    """``serve_web.py --write``: Python's own http.server (no isolation headers: one WASM thread) serves it."""
    import functools
    import http.server
    import threading

    folder = serve_web.write_static(tmp_path / "site")
    for name, data in _photos().items():
        (folder / "models" / name).write_bytes(data)
    quiet = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        driver = serve_web.open_page(f"http://127.0.0.1:{server.server_address[1]}/")
        try:
            same = serve_web.page_call(driver, "window.kerasArcface.verify(args[0], args[1]).then((r) => r.same)",
                                       "models/photo_Grace_Hopper_1.jpg", "models/photo_Grace_Hopper_2.jpg")
            assert same is True and driver.execute_script("return self.crossOriginIsolated") is False
        finally:
            driver.quit()
    finally:
        server.shutdown()
