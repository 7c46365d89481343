"""Embeddings of our face sets for benchmarks (cached), and synthetic people drawn around real faces: the
"real-looking" embeddings the clustering and gallery benchmarks measure at scales past the real sets."""

import pathlib
import time

import numpy as np


def embeddings_of(name, root, cache):
    """``(embeddings, identities, reference)`` of every crop under ``root/<identity>/`` with zoo model ``name``
    (cached under ``cache`` when given)."""
    from keras_arcface.alignment import recrop
    from keras_arcface.data import read_image
    from keras_arcface.runtime.embedder import DEFAULT_SPEC
    from keras_arcface.zoo import load_model

    paths = sorted(pathlib.Path(root).rglob("*.jpg"))
    identities = np.array([path.parent.name for path in paths])
    cached = pathlib.Path(cache) / f"{name}_{pathlib.Path(root).parent.name}_{len(paths)}.npy" if cache else None
    embedder = load_model(name)
    if cached is not None and cached.is_file():
        return np.load(cached), identities, embedder.reference
    start = time.perf_counter()
    parts = []
    for begin in range(0, len(paths), 512):
        faces = np.stack([read_image(path) for path in paths[begin:begin + 512]])
        parts.append(embedder.embed(recrop(faces, DEFAULT_SPEC, embedder.spec)))
    embeddings = np.concatenate(parts)
    print(f"{name}: {len(paths)} crops embedded in {time.perf_counter() - start:.0f} s", flush=True)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, embeddings)
    return embeddings, identities, embedder.reference


def synthetic_faces(real, count, seed=0):
    """``count`` unit embeddings: the real ones, then people drawn around them (a real face moved to a new
    identity, and 1-20 photos of it at the spread real same-person pairs show)."""
    rng = np.random.default_rng(seed)
    parts, total = [real], len(real)
    spread = 0.55  # noise of this norm leaves a photo at cosine about 0.7-0.8 of its person's centre
    while total < count:
        centre = real[rng.integers(len(real))] + rng.normal(0, 1.2 / np.sqrt(real.shape[1]), real.shape[1])
        centre /= np.linalg.norm(centre)
        photos = centre + rng.normal(0, spread / np.sqrt(real.shape[1]), (int(rng.integers(1, 21)), real.shape[1]))
        parts.append(photos / np.linalg.norm(photos, axis=1, keepdims=True))
        total += len(photos)
    return np.concatenate(parts)[:count].astype(np.float32)
