"""`keras-arcface serve`: every endpoint through real HTTP on loopback (the service a subprocess), the keys, the
limits, acknowledged enrollments across a restart and a SIGKILL, and two workers over one Milvus gallery."""

import base64
import concurrent.futures
import hashlib
import importlib.util
import threading

import numpy as np
import pytest

from keras_arcface.errors import InputError
from keras_arcface.gallery import open_gallery
from tests.faces import demo_face, jpeg_bytes, photo_of

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(module) is None for module in ("fastapi", "uvicorn", "multipart", "PIL", "httpx")),
    reason="the serve extra (and httpx) are not installed: pip install keras-arcface[serve] httpx")

KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def photos():
    """JPEG bytes: each demo crop in a photo of its own, and one photo of Grace Hopper beside Eileen Collins."""
    hopper = [jpeg_bytes(photo_of([demo_face("Grace_Hopper", n)])) for n in range(1, 5)]
    collins = [jpeg_bytes(photo_of([demo_face("Eileen_Collins", n)])) for n in range(1, 5)]
    both = jpeg_bytes(photo_of([demo_face("Grace_Hopper", 4), demo_face("Eileen_Collins", 4)]))
    blank = jpeg_bytes(np.full((300, 300, 3), 90, np.uint8))
    return {"hopper": hopper, "collins": collins, "both": both, "blank": blank}


def _service(*arguments, keys=KEY, tmp_path=None):
    from keras_arcface.service.process import ServiceProcess

    env = dict(__import__("os").environ, KERAS_ARCFACE_API_KEYS=keys or "")
    return ServiceProcess(*arguments, env=env, log=None if tmp_path is None else tmp_path / "serve.log")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One service with a gallery file, a key and small limits, for the endpoint tests."""
    folder = tmp_path_factory.mktemp("serve")
    with _service("--gallery", folder / "faces.npz", "--max-request-bytes", 2_000_000, "--max-pixels", 4_000_000,
                  tmp_path=folder) as running:
        yield running


@pytest.fixture(scope="module")
def client(service):
    import httpx

    with httpx.Client(base_url=service.url, timeout=60) as session:
        yield session


def _enroll(client, identity, images, headers=AUTH):
    files = [("images", (f"{identity}_{i}.jpg", image, "image/jpeg")) for i, image in enumerate(images)]
    return client.post("/enroll", data={"identity": identity}, headers=headers, files=files)


def _error(answer, status, *words):
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error", "status"} and body["status"] == status, body
    assert "Traceback" not in body["error"] and all(word in body["error"] for word in words), body
    return body["error"]


def test_health_ready_and_the_openapi_page(client):
    assert client.get("/health").json() == {"status": "alive"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["model"] and ready["gallery"].endswith("faces.npz")
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/verify", "/embed", "/identify", "/enroll", "/identities", "/identities/{identity}", "/health",
            "/ready"} <= set(paths)
    assert "multipart/form-data" in paths["/verify"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_verify_as_multipart_and_as_base64_json_gives_the_cli_fields(client, photos):
    same = client.post("/verify", files={"image_a": ("a.jpg", photos["hopper"][0]),
                                         "image_b": ("b.jpg", photos["hopper"][1])})
    assert same.status_code == 200, same.text
    result = same.json()
    assert {"similarity", "threshold", "threshold_source", "same", "model", "faces"} <= set(result)
    assert result["same"] is True and result["similarity"] > result["threshold"]
    assert {"box", "quality", "faces_found"} <= set(result["faces"][0])
    encoded = {name: base64.b64encode(data).decode() for name, data in
               (("image_a", photos["hopper"][0]), ("image_b", photos["collins"][0]))}
    different = client.post("/verify", json=encoded).json()
    assert different["same"] is False and different["similarity"] < result["similarity"]
    data_url = "data:image/jpeg;base64," + base64.b64encode(photos["both"]).decode()  # as a browser makes it
    either = client.post("/verify", json={"image_a": data_url, "image_b": encoded["image_b"], "any_face": True}).json()
    assert either["same"] is True  # Eileen Collins is one of the two faces of the first photo


def test_embed_gives_a_unit_embedding_of_the_chosen_face(client, photos):
    answer = client.post("/embed", files={"image": ("g.jpg", photos["hopper"][0])})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    embedding = np.array(body["embedding"])
    assert body["dimensions"] == len(embedding) and abs(np.linalg.norm(embedding) - 1) < 1e-5
    assert body["face"]["faces_found"] == 1 and body["model"]
    second = client.post("/embed", data={"face": "2"}, files={"image": ("both.jpg", photos["both"])}).json()
    assert second["face"]["face"] == 2 and second["face"]["faces_found"] == 2


def test_enroll_identify_list_and_delete(client, photos):
    first = _enroll(client, "Grace Hopper", photos["hopper"][:3])
    assert first.status_code == 200, first.text
    assert first.json()["added"] == 3 and first.json()["already_held"] == 0
    again = _enroll(client, "Grace Hopper", photos["hopper"][:3]).json()  # a retry adds nothing twice
    assert (again["added"], again["already_held"]) == (0, 3)
    assert _enroll(client, "Eileen Collins", photos["collins"][:3]).status_code == 200
    assert client.get("/identities").json()["identities"] == {"Eileen Collins": 3, "Grace Hopper": 3}
    found = client.post("/identify", files={"image": ("both.jpg", photos["both"])})
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["faces_found"] == 2 and [face["identity"] for face in body["faces"]] == ["Grace Hopper",
                                                                                         "Eileen Collins"]
    assert {"threshold", "threshold_source", "model", "identities", "matches"} <= set(body)
    stranger = client.post("/identify", data={"top_k": "1"}, files={"image": ("c.jpg", photos["collins"][3])}).json()
    assert stranger["identity"] == "Eileen Collins" and len(stranger["matches"]) == 1
    assert client.delete("/identities/Eileen Collins", headers=AUTH).json() == {"identity": "Eileen Collins",
                                                                                 "removed": 3}
    _error(client.delete("/identities/Eileen Collins", headers=AUTH), 404, "no identity")
    assert client.post("/identify", files={"image": ("c.jpg", photos["collins"][3])}).json()["identity"] == "unknown"


def test_an_enrollment_is_all_or_nothing(client, photos):
    message = _error(_enroll(client, "Half", [photos["hopper"][3], photos["blank"]]), 422, "nothing enrolled")
    assert "Half_1.jpg" in message
    assert "Half" not in client.get("/identities").json()["identities"]
    for identity in ("", " ", "a\x00b", "x" * 300):
        _error(_enroll(client, identity, photos["hopper"][:1]), 422, "identity")


def test_strangers_are_kept_out_of_writes(client, photos):
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789abc"}, {"Authorization": f"Basic {KEY}"},
                    {"Authorization": f"Bearer {KEY}x"}):
        answer = _enroll(client, "Intruder", photos["hopper"][:1], headers=headers)
        _error(answer, 401, "API key")
        assert answer.headers["www-authenticate"] == "Bearer"
        _error(client.delete("/identities/Grace Hopper", headers=headers), 401)
    assert "Intruder" not in client.get("/identities").json()["identities"]


def test_limits_and_bad_requests_answer_json_errors(client, photos):
    import cv2

    _error(client.post("/verify", content=b"x" * 2_100_000, headers={"content-type": "application/json"}), 413,
           "larger than")

    def chunks():  # no Content-Length: the limit is counted as the body streams in
        for _ in range(40):
            yield b"x" * 100_000

    _error(client.post("/verify", content=chunks(), headers={"content-type": "application/json"}), 413)
    ok, bomb = cv2.imencode(".png", np.zeros((3000, 2000), np.uint8))  # 6 MP of zeros: 6 kB on the wire
    assert ok and len(bomb) < 100_000
    _error(client.post("/embed", files={"image": ("big.png", bomb.tobytes())}), 413, "6,000,000 pixels")
    _error(client.post("/embed", files={"image": ("junk.jpg", b"not an image")}), 422, "junk.jpg", "decodable")
    _error(client.post("/embed", json={"image": "%%% not base64"}), 422, "base64")
    _error(client.post("/embed", files={"image": ("blank.jpg", photos["blank"])}), 422, "no face")
    _error(client.post("/embed", content=b"image", headers={"content-type": "text/plain"}), 422, "multipart")
    _error(client.post("/verify", files={"image_a": ("a.jpg", photos["hopper"][0])}), 422, "image_b")
    _error(client.post("/embed", data={"face": "0"}, files={"image": ("g.jpg", photos["hopper"][0])}), 422, "face")
    _error(client.post("/embed", data={"face": "3"}, files={"image": ("g.jpg", photos["both"])}), 422, "no face 3")
    _error(client.get("/nowhere"), 404)
    assert client.get("/ready").status_code == 200  # and the service is none the worse


def test_without_a_key_it_is_read_only_and_slow_requests_time_out(tmp_path, photos):
    import httpx

    with _service("--gallery", tmp_path / "g.npz", "--timeout", 0.002, keys=None, tmp_path=tmp_path) as running, \
            httpx.Client(base_url=running.url, timeout=60) as client:
        _error(_enroll(client, "Grace", photos["hopper"][:1]), 403, "read-only", "API key")
        running.wait_for_log("loaded")
        _error(client.post("/verify", files={"image_a": ("a.jpg", photos["hopper"][0]),
                                             "image_b": ("b.jpg", photos["hopper"][1])}), 504, "longer than")
        assert client.get("/health").status_code == 200


def test_a_model_that_does_not_load_is_said_by_ready_not_by_a_dead_process(tmp_path):
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"not a model" * 10)
    service = _service("--model", corrupt, tmp_path=tmp_path).start(wait=False)
    try:
        service.wait_for_log("the model did not load")
        status, body = service.get("/ready")
        assert status == 503 and "corrupt.tflite" in body["error"], body
        assert service.get("/health") == (200, {"status": "alive"})
        assert service.get("/identities")[0] == 404  # no gallery configured: said as such
    finally:
        service.stop()


def test_acknowledged_enrollments_survive_a_restart_and_a_sigkill_leaves_no_half_identity(tmp_path, photos):
    """Two workers on one gallery file: concurrent enrolls and identifies, every acknowledged enrollment found
    after a restart; then the service killed (SIGKILL, workers too) in the middle of an enrollment: the identity
    is wholly there or wholly absent, and everything acknowledged before is there."""
    import httpx

    gallery = tmp_path / "faces.npz"
    arguments = ("--gallery", gallery, "--workers", 2, "--protect-reads")
    acknowledged, errors = {}, []
    lock = threading.Lock()
    faces = photos["hopper"] + photos["collins"]
    with _service(*arguments, tmp_path=tmp_path) as running, httpx.Client(base_url=running.url, timeout=120) as client:
        _error(client.get("/identities"), 401)  # reads want a key too
        assert _enroll(client, "Seed", faces[:1]).status_code == 200

        def work(number):
            try:
                if number % 2:
                    answer = _enroll(client, f"person {number}", [faces[number % 8], faces[(number + 3) % 8]])
                    if answer.status_code == 200:
                        with lock:
                            acknowledged[f"person {number}"] = answer.json()
                    else:
                        errors.append(answer.text)
                else:
                    answer = client.post("/identify", headers=AUTH, files={"image": ("q.jpg", faces[number % 8])})
                    if answer.status_code != 200:
                        errors.append(answer.text)
            except Exception as error:  # (said below)
                errors.append(repr(error))

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(16)))
        assert not errors, errors[:3]
    # every acknowledged enrollment is there after the restart (a photo held already is held once: by its first)
    with _service(*arguments, tmp_path=tmp_path) as running, httpx.Client(base_url=running.url, timeout=120) as client:
        held = client.get("/identities", headers=AUTH).json()["identities"]
        for identity, answer in acknowledged.items():
            assert held.get(identity, 0) == answer["added"], (identity, answer, held)
        assert sum(held.values()) == len(set(faces))  # each photo once
        with open_gallery(gallery) as index:
            holder = {entry["hash"].split("#")[0]: entry["identity"] for entry in index.entries()}
        for photo in faces:  # and found: each photo's best match is the identity that holds it
            found = client.post("/identify", headers=AUTH, files={"image": ("q.jpg", photo)}).json()
            assert found.get("identity") == holder[f"sha256:{hashlib.sha256(photo).hexdigest()}"], found
        before = held
        big = [jpeg_bytes(photo_of([np.ascontiguousarray(np.roll(demo_face("Grace_Hopper", 1 + i % 4), i, axis=1))]))
               for i in range(40)]
        answered = []
        sending = threading.Thread(target=lambda: answered.append(_try(lambda: _enroll(client, "Killed mid-way",
                                                                                      big))))
        sending.start()
        running.wait_for_log("enrolling 'Killed mid-way' from 40 image(s)")
        running.kill()
        sending.join()
        assert answered == [None], "the kill came after the enrollment was answered, not in the middle of it"
    with _service(*arguments, tmp_path=tmp_path) as running, httpx.Client(base_url=running.url, timeout=120) as client:
        after = client.get("/identities", headers=AUTH).json()["identities"]
        assert after.pop("Killed mid-way", 40) == 40  # all of it or none of it
        assert after == before
    with open_gallery(gallery) as index:  # the file itself is whole
        assert len(index) in (sum(before.values()), sum(before.values()) + 40)


def _try(call):
    try:
        return call()
    except Exception:  # the service was killed under it
        return None


def test_two_workers_share_a_milvus_gallery(tmp_path, photos, request):
    """Two service processes on two ports hold no state: what one enrolls the other identifies and deletes."""
    import httpx

    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    server = request.getfixturevalue("milvus_server")  # (conftest.py's: a Milvus server for this module)
    location = f"milvus://{server}/served_{tmp_path.name[-10:].replace('-', '_')}"
    with _service("--gallery", location, tmp_path=tmp_path) as first, \
            _service("--gallery", location) as second, \
            httpx.Client(base_url=first.url, timeout=60) as one, httpx.Client(base_url=second.url, timeout=60) as two:
        assert _enroll(one, "Grace Hopper", photos["hopper"][:2]).json()["added"] == 2
        assert _enroll(two, "Eileen Collins", photos["collins"][:2]).json()["added"] == 2
        found = two.post("/identify", files={"image": ("both.jpg", photos["both"])}).json()
        assert found["identities"] == ["Grace Hopper", "Eileen Collins"]
        assert one.get("/identities").json()["identities"] == {"Eileen Collins": 2, "Grace Hopper": 2}
        assert two.delete("/identities/Grace Hopper", headers=AUTH).json()["removed"] == 2
        assert one.post("/identify", files={"image": ("g.jpg", photos["hopper"][3])}).json()["identity"] == "unknown"
        assert one.delete("/identities/Eileen Collins", headers=AUTH).json()["removed"] == 2  # the last: none left
        assert two.get("/identities").json()["identities"] == {}
        _error(two.post("/identify", files={"image": ("g.jpg", photos["hopper"][3])}), 404, "POST /enroll first")
        assert _enroll(two, "Grace Hopper", photos["hopper"][:1]).status_code == 200  # and it starts again
        assert one.post("/identify", files={"image": ("g.jpg", photos["hopper"][3])}).json()["identity"] == \
            "Grace Hopper"


# In-process: the parts under the HTTP.

def test_the_batcher_embeds_concurrent_calls_together_and_each_gets_its_own():
    from keras_arcface.service.batching import BatchingEmbedder

    class Slow:
        reference = "slow"
        calls = []

        def embed(self, faces):
            self.calls.append(len(faces))
            threading.Event().wait(0.05)
            if (faces == 255).any():
                raise ValueError("a bad face")
            return faces.reshape(len(faces), -1)[:, :2].astype(np.float32)

    inner = Slow()
    batcher = BatchingEmbedder(inner, max_batch=8)
    faces = [np.full((1 + i % 3, 4, 4, 3), i, np.uint8) for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(batcher.embed, faces))
    for face, result in zip(faces, results):
        assert result.shape == (len(face), 2) and (result == face[0, 0, 0, 0]).all()
    assert sum(inner.calls) == sum(len(f) for f in faces) and max(inner.calls) <= 8 and len(inner.calls) < 12
    assert batcher.faces == sum(len(f) for f in faces) and batcher.calls == len(inner.calls)
    with pytest.raises(ValueError, match="a bad face"):
        batcher.embed(np.full((1, 4, 4, 3), 255, np.uint8))
    assert batcher.embed(np.ones((4, 4, 3), np.uint8)).shape == (2,)  # one face; and it still works
    single = BatchingEmbedder(Slow(), max_batch=1)
    Slow.calls = []
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(single.embed, [np.zeros((1, 4, 4, 3), np.uint8)] * 4))
    assert Slow.calls == [1, 1, 1, 1]
    batcher.close()
    single.close()


def test_settings_keys_and_the_pixel_limit(tmp_path, monkeypatch):
    import cv2

    from keras_arcface.service.core import TooLargeError, decoded_image
    from keras_arcface.service.settings import ServiceSettings, api_keys, key_matches

    for bad in (dict(port=70000), dict(workers=0), dict(timeout_s=0), dict(max_batch=0), dict(min_quality=2.0),
                dict(workers=2, gallery="faces.db")):
        with pytest.raises(InputError):
            ServiceSettings(**bad)
    settings = ServiceSettings(gallery="g.npz", workers=3, host="0.0.0.0")
    assert ServiceSettings.from_environment({"KERAS_ARCFACE_SERVE_SETTINGS": settings.to_environment()}) == settings
    assert not settings.is_loopback() and ServiceSettings().is_loopback()
    key_file = tmp_path / "keys"
    key_file.write_text("# the team's keys\nfile-key-0123456789abcdef\n\n")
    keys = api_keys(ServiceSettings(api_key_file=str(key_file)), {"KERAS_ARCFACE_API_KEYS": f"{KEY}, "})
    assert keys == (KEY.encode(), b"file-key-0123456789abcdef")
    assert key_matches(KEY, keys) and not key_matches(KEY[:-1], keys) and not key_matches("", keys)
    with pytest.raises(InputError, match="API key 1"):
        api_keys(ServiceSettings(), {"KERAS_ARCFACE_API_KEYS": "short"})
    with pytest.raises(InputError, match="not found"):
        api_keys(ServiceSettings(api_key_file=str(tmp_path / "none")), {})
    ok, png = cv2.imencode(".png", np.zeros((100, 80, 3), np.uint8))
    assert decoded_image("small.png", png.tobytes(), 8000).shape == (100, 80, 3)
    with pytest.raises(TooLargeError, match="80 x 100 = 8,000 pixels"):
        decoded_image("small.png", png.tobytes(), 7999)


def test_the_container_and_kubernetes_recipes_run_a_command_serve_accepts():
    """deploy/ is not built or applied here (docs/serving.md): its command lines are at least ones `serve` takes."""
    import json
    import pathlib
    import re

    from keras_arcface.cli import build_parser

    deploy = pathlib.Path(__file__).resolve().parents[1] / "deploy"
    dockerfile = (deploy / "Dockerfile").read_text()
    entrypoint, command = (json.loads(re.search(rf"^{word} (\[.*\])$", dockerfile, re.M).group(1))
                           for word in ("ENTRYPOINT", "CMD"))
    assert entrypoint[:2] == ["keras-arcface", "serve"] and "[runtime,serve,milvus]" in dockerfile
    manifest = (deploy / "kubernetes.yaml").read_text()
    arguments = json.loads(re.search(r"args: (\[.*?\])", manifest, re.S).group(1))
    for argv in (entrypoint[1:] + command, entrypoint[1:] + arguments):
        parsed = build_parser().parse_args(argv)
        assert parsed.func.__name__ == "_serve" and parsed.gallery.startswith("milvus://"), argv
    assert "path: /ready" in manifest and "path: /health" in manifest and "KERAS_ARCFACE_API_KEYS" in manifest


def test_the_load_script_runs_bounded_and_the_docs_show_its_record(tmp_path):
    """scripts/serve_load.py on tiny settings (a run, its JSON), and docs/serving.md's table is the recorded one."""
    import json
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, str(root / "scripts/serve_load.py"), "--workers", "1", "--max-batch", "4",
                           "--clients", "2", "--duration", "1", "--max-requests", "6", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = json.loads(out.read_text())["rows"]
    assert row["requests_ok"] + row["errors"] <= 6 and row["errors"] == 0 and row["requests_ok"] >= 1
    assert row["p50"] <= row["p95"] <= row["p99"] and set(row["by_operation"]) == {"verify", "identify", "enroll"}
    sys.path.insert(0, str(root / "scripts"))
    try:
        from serve_load import table
    finally:
        sys.path.remove(str(root / "scripts"))
    recorded = json.loads((root / "docs/serving_load.json").read_text())
    assert table(recorded["rows"]) in (root / "docs/serving.md").read_text()
    assert all(row["errors"] == 0 for row in recorded["rows"])
    assert all(set(times) == {"decode", "find_face", "embed"} for times in recorded["stages_ms_per_photo"].values())
