"""Draw the ArcFace paper's decision-margin picture from the layers themselves.

For every head, a unit embedding x = (cos t, sin t) is fed with label 0 against the class
centres (1, 0) and (0, 1); the plotted value is the head's target logit divided by its
scale (SphereFace's scale ||x|| is 1 here), against t in degrees.

    python scripts/plot_target_logits.py docs/target_logits.png
"""

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_arcface.heads import ArcFaceLayer, CombinedMarginLayer, CosFaceLayer, SoftmaxLayer, SphereFaceLayer  # noqa: E402

CURVES = [
    ("Softmax / NormFace: cos θ", SoftmaxLayer(2, use_bias=False), 1.0, "k"),
    ("SphereFace m=4, λ=0: ψ(θ)", SphereFaceLayer(2, margin=4, lambda_base=0.0, lambda_min=0.0), 1.0, "tab:purple"),
    ("SphereFace m=4, λ=5 (annealed floor)", SphereFaceLayer(2, margin=4), 1.0, "tab:pink"),
    ("CosFace m=0.35: cos θ − m", CosFaceLayer(2), 64.0, "tab:blue"),
    ("ArcFace m=0.5: cos(θ + m)", ArcFaceLayer(2), 64.0, "tab:red"),
    ("CM1 (1, 0.3, 0.2)", CombinedMarginLayer(2, m1=1.0, m2=0.3, m3=0.2), 64.0, "tab:green"),
    ("CM2 (0.9, 0.4, 0.15)", CombinedMarginLayer(2, m1=0.9, m2=0.4, m3=0.15), 64.0, "tab:olive"),
]


def target_curve(head, scale, thetas):
    head.build((None, 2))
    head.kernel.assign(np.eye(2, dtype="float32"))
    if isinstance(head, SphereFaceLayer):
        head.iteration.assign(10**9)  # lambda at its floor lambda_min (0 for the pure-psi curve)
    x = np.stack([np.cos(thetas), np.sin(thetas)], axis=1).astype("float32")
    logits = ops.convert_to_numpy(head([x, np.zeros(len(x), "int32")]))
    return logits[:, 0] / scale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", nargs="?", default="docs/target_logits.png")
    args = parser.parse_args(argv)
    thetas = np.linspace(0.0, math.pi, 721)
    figure, axes = plt.subplots(figsize=(7.5, 5))
    for label, head, scale, colour in CURVES:
        axes.plot(np.degrees(thetas), target_curve(head, scale, thetas), label=label, color=colour)
    axes.set_xlabel("angle θ between the embedding and its class centre (degrees)")
    axes.set_ylabel("target logit / scale")
    axes.set_xlim(0, 180)
    axes.set_ylim(-2.0, 1.1)
    axes.axhline(0, color="0.8", lw=0.8)
    axes.set_title("Target logit against θ, computed by the keras-arcface layers")
    axes.legend(fontsize=8, loc="upper right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
