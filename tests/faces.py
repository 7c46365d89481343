"""Tiny synthetic face folders for tests: no ../shared needed."""

import pathlib

import numpy as np


def write_image(path, image):
    import cv2

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = image[..., ::-1] if image.ndim == 3 and image.shape[2] == 3 else image
    assert cv2.imwrite(str(path), bgr), path


def jpeg_bytes(image, quality=92):
    """An RGB uint8 image encoded as a JPEG file's bytes."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return encoded.tobytes()


def make_face_folder(root, identities=4, per_identity=8, size=32, seed=0):
    """<root>/<id_k>/<n>.png: each identity a smooth random pattern plus noise."""
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    for k in range(identities):
        base = rng.uniform(0, 255, (size // 8, size // 8, 3))
        base = np.kron(base, np.ones((8, 8, 1)))
        for n in range(per_identity):
            noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            write_image(root / f"id_{k}" / f"{n:03d}.png", noisy)
    return root


DEMO_FACES = pathlib.Path(__file__).resolve().parents[1] / "keras_arcface" / "demo_data" / "faces"


def demo_crops():
    """The 8 bundled aligned demo crops, in name order: (paths, RGB uint8 (8, 112, 112, 3))."""
    from keras_arcface.data.images import read_image

    paths = sorted(DEMO_FACES.glob("*/*.jpg"))
    return paths, np.stack([read_image(path) for path in paths])


def demo_face(name, number=1):
    """A bundled aligned demo crop (Grace_Hopper or Eileen_Collins, 1-4), RGB uint8."""
    from keras_arcface.data.images import read_image

    return read_image(DEMO_FACES / name / f"{name}_{number:04d}.jpg")


def photo_of(crops, size=(480, 640), scale=2.0, background=110):
    """A generated "photo": aligned crops enlarged side by side on a grey canvas (YuNet finds them)."""
    import cv2

    canvas = np.full((*size, 3), background, np.uint8)
    for i, crop in enumerate(crops):
        big = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        y, x = (size[0] - big.shape[0]) // 2, 40 + i * (big.shape[1] + 60)
        canvas[y:y + big.shape[0], x:x + big.shape[1]] = big
    return canvas
