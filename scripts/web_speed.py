"""Time per face of the face-verification page (detect + align + embed) in headless Chromium on this CPU.

    npm ci --prefix web
    python scripts/web_speed.py [--repeats 30] [--output docs/web_speed.json] [--screenshot docs/web_verify.png]

For each setting the page is loaded afresh (scripts/serve_web.py) and ``window.kerasArcface.timePerFace``
runs the whole pipeline on one photo of one face (360 x 480) ``--repeats`` times after a warm-up; the
median milliseconds of each step (YuNet detection, the alignment warp, the embedding) and of the whole, and
the whole's 90th percentile, are printed and written as JSON.  Settings: the embedding
runtime (LiteRT.js on the default model's TFLite file, onnxruntime-web on its ONNX file), WASM threads (1,
2), and for LiteRT.js its WASM build without relaxed SIMD (``litert_wasm_compat_internal``).
onnxruntime-web 1.31 ships only SIMD builds, so it has no "without SIMD" row; YuNet runs on
onnxruntime-web in every row.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import serve_web  # noqa: E402

from tests.faces import demo_face, jpeg_bytes, photo_of  # noqa: E402

SETTINGS = [
    {"runtime": "litert", "threads": 1},
    {"runtime": "litert", "threads": 2},
    {"runtime": "litert", "threads": 1, "litert_wasm": "litert_wasm_compat_internal.js"},
    {"runtime": "onnx", "threads": 1},
    {"runtime": "onnx", "threads": 2},
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs a setting, after one warm-up")
    parser.add_argument("--output", help="write the figures here as JSON")
    parser.add_argument("--screenshot", help="save a screenshot of the page after verifying two photos")
    args = parser.parse_args(argv)
    photo = jpeg_bytes(photo_of([demo_face("Grace_Hopper", 1)], size=(360, 480), scale=1.5))
    other = jpeg_bytes(photo_of([demo_face("Grace_Hopper", 2)], size=(360, 480), scale=1.5))
    server = serve_web.start_server(0, extra={"photo.jpg": photo, "other.jpg": other})
    rows = []
    try:
        for setting in SETTINGS:
            query = "&".join(f"{key}={value}" for key, value in setting.items())
            driver = serve_web.open_page(f"http://127.0.0.1:{server.server_address[1]}/?{query}")
            try:
                runs = serve_web.page_call(driver, "window.kerasArcface.timePerFace(args[0], args[1])",
                                           "models/photo.jpg", args.repeats)
                isolated = driver.execute_script("return self.crossOriginIsolated")
                if args.screenshot and setting == SETTINGS[0]:
                    serve_web.page_call(driver, "window.kerasArcface.verify(args[0], args[1]).then(() => true)",
                                        "models/photo.jpg", "models/other.jpg")
                    driver.save_screenshot(args.screenshot)
            finally:
                driver.quit()
            row = {**setting, "file": server.config["files"]["tflite" if setting["runtime"] == "litert"
                                                             else "onnx"]["format"],
                   **{f"{step}_median_ms": round(float(np.median([run[step] for run in runs])), 2)
                      for step in ("detect", "align", "embed", "total")},
                   "total_p90_ms": round(float(np.percentile([run["total"] for run in runs], 90)), 2),
                   "runs": len(runs), "cross_origin_isolated": isolated}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.shutdown()
    if args.output:
        pathlib.Path(args.output).write_text(json.dumps(
            {"model": server.config["model"], "photo": "360 x 480, one face (a demo crop enlarged 1.5x)",
             "browser": "Debian chromium, headless", "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
