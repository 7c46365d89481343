"""Tiny synthetic face folders for tests: no ../shared needed."""

import pathlib

import numpy as np


def write_image(path, image):
    import cv2

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = image[..., ::-1] if image.ndim == 3 and image.shape[2] == 3 else image
    assert cv2.imwrite(str(path), bgr), path


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
