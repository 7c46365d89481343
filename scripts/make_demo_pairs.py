"""Recreate the demo's bundled face pairs (keras_arcface/demo_data/) from two public-domain photos.

    pip download --no-deps scikit-image -d /tmp/sk && unzip -o /tmp/sk/*.whl 'skimage/data/astronaut.png' -d /tmp/sk
    python scripts/make_demo_pairs.py --astronaut /tmp/sk/skimage/data/astronaut.png \
        --detector ../shared/models/face_detection_yunet_2023mar_int8bq.onnx

Sources (both public domain, works of the US government):
- Grace Hopper, official US Navy portrait (1984), as shipped in matplotlib's sample data
  (``matplotlib/mpl-data/sample_data/grace_hopper.jpg``).
- Eileen Collins, NASA portrait (1992), as shipped in scikit-image (``skimage/data/astronaut.png``).

Each person has one photograph, so each identity's four images are four captures simulated from
it: the photo itself, the photo rotated by 12 degrees and halved in size under dimmer light, its
mirror image with lower contrast and blur, and a grey, heavily JPEG-compressed copy shifted in
the frame.  Every capture is detected and aligned again with YuNet (keras_arcface.alignment).
Same-person pairs are therefore easy; the set shows the pipeline end to end, it is not a benchmark.
"""

import argparse
import pathlib
import sys

import cv2
import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[1] / "keras_arcface" / "demo_data"


def rotate(image, degrees, scale):
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT)


def captures(rgb):
    """Four captures of one photo (uint8 RGB)."""
    dim = np.clip(255.0 * (rotate(rgb, 12, 0.5) / 255.0) ** 1.6, 0, 255).astype(np.uint8)
    mirrored = cv2.GaussianBlur(np.clip(0.6 * rgb[:, ::-1].astype(np.float32) + 50, 0, 255).astype(np.uint8),
                                (0, 0), 1.2)
    grey = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    grey = np.roll(grey, (25, -20), axis=(0, 1))
    ok, encoded = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 20])
    grey = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return [rgb, dim, mirrored, grey]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--astronaut", required=True, help="skimage/data/astronaut.png")
    parser.add_argument("--hopper", help="grace_hopper.jpg (default: matplotlib's sample data)")
    parser.add_argument("--detector", required=True, help="YuNet .onnx")
    args = parser.parse_args(argv)

    from keras_arcface.alignment import FaceAligner

    if not args.hopper:
        import matplotlib

        args.hopper = pathlib.Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    aligner = FaceAligner(args.detector)
    people = {"Grace_Hopper": args.hopper, "Eileen_Collins": args.astronaut}
    for person, source in people.items():
        rgb = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB)
        folder = OUT / "faces" / person
        folder.mkdir(parents=True, exist_ok=True)
        for number, capture in enumerate(captures(rgb), start=1):
            aligned = aligner.align(capture)
            cv2.imwrite(str(folder / f"{person}_{number:04d}.jpg"), cv2.cvtColor(aligned, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
    (hopper, collins) = people
    same = [(p, a, b) for p in people for a in range(1, 5) for b in range(a + 1, 5)]
    # 12 of the 16 cross pairs, so that both kinds are equally many
    different = [(hopper, a, collins, b) for a in range(1, 5) for b in range(1, 5) if (a + b) % 4]
    lines = [f"1\t{len(same)}"]
    lines += [f"{p}\t{a}\t{b}" for p, a, b in same]
    lines += [f"{p}\t{a}\t{q}\t{b}" for p, a, q, b in different]
    (OUT / "pairs.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {len(same)} same-person and {len(different)} different-person pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
