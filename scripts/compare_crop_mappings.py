"""LFW accuracy of a model whose crop is not ArcFace's 112x112, fed the stored ArcFace crops mapped
onto its crop three ways: the least-squares template similarity (what ``eval`` does,
``keras_arcface.alignment.recrop``), the LMEDS template similarity (the photo aligner's fit) and a
plain resize.

    python scripts/compare_crop_mappings.py ../shared/models/face-reidentification-retail-0095_fp16.xml \\
        --shared ../shared

Prints each mapping's matrix and its 10-fold accuracy on all 6,000 pairs of pairs.txt, or on another
benchmark of 112x112 ArcFace crops in LFW's format (``--pairs benchmarks/celeba-holdout/pairs.txt
--images benchmarks/celeba-holdout/images``).
"""

import argparse
import pathlib

import numpy as np


def mappings(source, target):
    """name -> 2x3 matrix from ``source``'s crop to ``target``'s (two InputSpecs)."""
    import cv2

    from keras_arcface.alignment import least_squares_similarity

    scale = np.array([target.size[1] / source.size[1], target.size[0] / source.size[0]])
    return {"least-squares similarity": least_squares_similarity(source.landmarks, target.landmarks),
            "LMEDS similarity": cv2.estimateAffinePartial2D(source.landmarks, target.landmarks, method=cv2.LMEDS)[0],
            "plain resize": np.array([[scale[0], 0, 0], [0, scale[1], 0]])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model file the runtime reads (.onnx, .tflite, OpenVINO .xml)")
    parser.add_argument("--shared", default="../shared", help="the shared folder (data/lfw)")
    parser.add_argument("--pairs", help="a pairs file in LFW's format (default: <shared>/data/lfw/pairs.txt)")
    parser.add_argument("--images", help="its folder of aligned 112x112 crops (default: <shared>/data/lfw/aligned)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import cv2

    from keras_arcface.data.images import read_image
    from keras_arcface.evaluation.pairs import read_pairs
    from keras_arcface.evaluation.protocol import kfold_accuracy
    from keras_arcface.runtime import FaceEmbedder
    from keras_arcface.runtime.embedder import DEFAULT_SPEC

    lfw = pathlib.Path(args.shared) / "data" / "lfw"
    pairs = read_pairs(args.pairs or lfw / "pairs.txt", args.images or lfw / "aligned")
    embedder = FaceEmbedder(args.model, threads=args.threads)
    files = sorted({p.left for p in pairs} | {p.right for p in pairs})
    index = {path: i for i, path in enumerate(files)}
    crops = np.stack([read_image(path) for path in files])
    same = np.array([p.same for p in pairs])
    width_height = (embedder.spec.size[1], embedder.spec.size[0])
    for name, matrix in mappings(DEFAULT_SPEC, embedder.spec).items():
        faces = np.stack([cv2.warpAffine(crop, np.asarray(matrix, np.float64), width_height, flags=cv2.INTER_LINEAR)
                          for crop in crops])
        embeddings = embedder.embed(faces)
        scores = np.array([embeddings[index[p.left]] @ embeddings[index[p.right]] for p in pairs])
        accuracies, _ = kfold_accuracy(scores, same, 10)
        print(f"{name:<26} {np.round(matrix, 4).tolist()}  accuracy {100 * accuracies.mean():.2f} % "
              f"± {100 * accuracies.std():.2f}")


if __name__ == "__main__":
    main()
