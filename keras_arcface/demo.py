"""``keras-arcface demo``: the zoo's default model verifies a bundled set of face pairs.

The model is fetched by name through the zoo (the same cache, checksum and mirror path as any
download; from a checkout the repository's ``saved_models/`` is the default mirror, so no network is
needed), the Keras model and its TFLite export embed the same faces, and the demo prints a
per-pair table, the accuracy at the model card's threshold, and the Keras-vs-TFLite parity.

The bundled pairs (``keras_arcface/demo_data``, see its README) are two public-domain people, four
simulated captures each: they show the pipeline, they are not a benchmark.  ``--pairs/--images``
run the same report on any LFW-format pairs file (e.g. the shared LFW crops).
"""

import pathlib

import numpy as np

DEMO_DATA = pathlib.Path(__file__).parent / "demo_data"


def run_demo(model=None, pairs=None, images=None, print_fn=print, **zoo_options):
    """Run the demo; returns {"accuracy", "threshold", "min_cosine", "decisions_agree", "rows", "runtime_only"}.

    With Keras and its backend installed, the Keras model and the TFLite float32 export embed the
    faces and their parity is reported; without them (``pip install keras-arcface[runtime]``) the
    card's runtime artifact (bundled with the package) does, and parity is not measured.
    """
    from keras_arcface.embedding import keras_available, load_embedder, zoo_reference
    from keras_arcface.evaluation.evaluate import load_faces
    from keras_arcface.evaluation.pairs import read_pairs
    from keras_arcface.zoo import default_model, download, load_model, model_card

    pairs = read_pairs(pairs or DEMO_DATA / "pairs.txt", images or DEMO_DATA / "faces")
    reference_name = zoo_reference(model) if model else (default_model(), None)
    comparison = None
    if reference_name is None:  # a model file or folder: its own threshold, no parity check
        embedder, name = load_embedder(model, **zoo_options), str(model)
        print_fn(f"model {model}")
    else:
        name, fmt = reference_name
        card = model_card(name)
        print_fn(f"model {name}: {card.summary}")
        if fmt is None and keras_available():
            print_fn(f"  weights {download(name, 'keras', **zoo_options)} (sha256 verified)")
            embedder = load_model(name, "keras", **zoo_options)
            comparison = load_model(name, "tflite_float32", **zoo_options)
        else:
            fmt = fmt or card.runtime_format()
            note = ("" if reference_name[1] else "; Keras with a backend is not installed, so the Keras-vs-TFLite "
                    "parity check is skipped (pip install 'keras-arcface[tensorflow]' to run it)")
            print_fn(f"  {fmt} file {download(name, fmt, **zoo_options)} (sha256 verified){note}")
            embedder = load_model(name, fmt, **zoo_options)
    runtime_only = comparison is None

    unique = sorted({path for pair in pairs for path in (pair.left, pair.right)})
    faces = load_faces(unique, embedder.spec)  # the bundled ArcFace crops, onto the model's own crop
    keras_embeddings = embedder.embed(faces)
    tflite_embeddings = keras_embeddings if comparison is None else comparison.embed(faces)
    index = {path: i for i, path in enumerate(unique)}
    threshold, source = embedder.reference.threshold, embedder.reference.threshold_source
    if threshold is None:
        from keras_arcface.errors import InputError

        raise InputError(f"{name} has no calibrated threshold: use a zoo model, or calibrate one with "
                         "`keras-arcface eval --save-threshold`")

    rows = []
    for pair in pairs:
        a, b = index[pair.left], index[pair.right]
        keras_score = float(keras_embeddings[a] @ keras_embeddings[b])
        tflite_score = float(tflite_embeddings[a] @ tflite_embeddings[b])
        rows.append({"left": pathlib.Path(pair.left).stem, "right": pathlib.Path(pair.right).stem,
                     "same": pair.same, "cosine": keras_score, "tflite_cosine": tflite_score,
                     "predicted": keras_score >= threshold, "tflite_predicted": tflite_score >= threshold})
    width = max(len(r["left"]) for r in rows) + 2
    print_fn(f"\n{'image A':<{width}}{'image B':<{width}}{'truth':>9}{'cosine':>9}{'decision':>10}  ok")
    for r in rows:
        print_fn(f"{r['left']:<{width}}{r['right']:<{width}}{'same' if r['same'] else 'diff':>9}"
                 f"{r['cosine']:>9.4f}{'same' if r['predicted'] else 'diff':>10}  "
                 f"{'yes' if r['predicted'] == r['same'] else 'NO'}")
    accuracy = float(np.mean([r["predicted"] == r["same"] for r in rows]))
    parity = np.sum(keras_embeddings * tflite_embeddings, axis=1)
    agree = all(r["predicted"] == r["tflite_predicted"] for r in rows)
    print_fn(f"\naccuracy {accuracy:.2%} on {len(rows)} pairs at threshold {threshold:.4f} ({source})")
    if not runtime_only:
        print_fn(f"TFLite float32 vs Keras on these {len(unique)} faces: minimum cosine {parity.min():.6f}, "
                 f"largest score difference {max(abs(r['cosine'] - r['tflite_cosine']) for r in rows):.2e}, "
                 f"decisions {'identical' if agree else 'DIFFER'}")
    return {"accuracy": accuracy, "threshold": threshold, "min_cosine": float(parity.min()),
            "decisions_agree": agree, "rows": rows, "runtime_only": runtime_only}
