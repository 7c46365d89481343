"""keras-arcface: margin-based softmax heads and a face-recognition model zoo for Keras 3."""

import importlib.util
import pathlib
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).parent


def bundled_model_files():
    """``[(zoo name, file)]`` the wheel carries: the default model's smallest .onnx / .tflite
    artifact that passes its parity and accuracy gates (``ModelCard.runtime_format``), taken from
    ``saved_models/`` at build time, so the repository holds one copy."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # cards.py imports keras_arcface.errors and the format table
    spec = importlib.util.spec_from_file_location("_keras_arcface_cards", HERE / "keras_arcface" / "zoo" / "cards.py")
    cards = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cards)
    defaults = [card for card in cards.read_cards(HERE / "zoo").values() if card.default]
    if len(defaults) != 1 or defaults[0].runtime_format() is None:
        raise SystemExit("the wheel needs exactly one default zoo model with an artifact that passes its gates")
    card = defaults[0]
    return [(card.name, card.artifact(card.runtime_format()).file)]


class BuildWithBundledModel(build_py):
    """build_py, plus the default model's runtime file under keras_arcface/zoo/bundled/<name>/ (the
    zoo's first mirror; see keras_arcface/zoo/download.py).  Editable installs read saved_models/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name, file in bundled_model_files():
            source = HERE / "saved_models" / name / file
            if not source.is_file():
                raise SystemExit(f"{source} is missing: the wheel bundles it (check out saved_models/)")
            target = pathlib.Path(self.build_lib) / "keras_arcface" / "zoo" / "bundled" / name / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

setup(
    name="keras-arcface",
    version="0.1.0",
    description="Margin-softmax heads (ArcFace, CosFace, SphereFace, ...) and face models for Keras 3",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[*find_packages(include=["keras_arcface", "keras_arcface.*"]), "keras_arcface.zoo.cards"],
    # The model cards live in the top-level zoo/ (pure data) and install as keras_arcface/zoo/cards.
    package_dir={"keras_arcface.zoo.cards": "zoo"},
    package_data={"keras_arcface": ["demo_data/README.md", "demo_data/pairs.txt", "demo_data/faces/*/*.jpg",
                                    "alignment/models/*.onnx", "alignment/models/README.md"],
                  "keras_arcface.zoo.cards": ["*.json"]},
    install_requires=[
        "keras>=3.13",
        "numpy>=1.26",
        "opencv-python-headless>=4.10",
        # The zoo: one process at a time fetches a file (filelock), a progress bar on terminals (tqdm).
        "filelock>=3.12",
        "tqdm>=4.66",
    ],
    extras_require={
        # The TensorFlow backend (graph mode, XLA, MirroredStrategy); JAX users skip it.
        "tensorflow": ["tensorflow>=2.20"],
        "jax": ["jax>=0.4.30"],
        # .onnx / .tflite inference (keras_arcface.runtime) without TensorFlow.
        "runtime": ["onnxruntime>=1.17", "ai-edge-litert>=1.0"],
        # ONNX export (Keras' exporter calls tf2onnx).
        "export": ["tensorflow>=2.20", "tf2onnx>=1.17", "onnx>=1.14"],
        # Approximate search for large identification galleries (FaceIndex(backend="faiss")).
        "faiss": ["faiss-cpu>=1.8"],
        # Galleries in Milvus (`--gallery milvus://HOST:PORT/COLLECTION`) and Milvus Lite (`faces.db`) files.
        "milvus": ["pymilvus>=3.0", "milvus-lite>=3.2"],
        # `keras-arcface serve`: the ASGI app (FastAPI), its server (uvicorn), multipart uploads, and image
        # headers read before decoding (Pillow: the pixel limit).
        "serve": ["fastapi>=0.110", "uvicorn>=0.29", "python-multipart>=0.0.9", "pillow>=10"],
        # OpenVINO IR sources for `keras-arcface convert` (read and run by OpenVINO itself).
        "convert": ["openvino>=2024.0"],
        # ROC curves and the README's figure.
        "plots": ["matplotlib>=3.8"],
        # `train --tensorboard` (TensorFlow 2.21 no longer installs it).
        "tensorboard": ["tensorboard>=2.18"],
        # Tests (TensorFlow and JAX backends) and everything optional.
        # pytest-xdist: the suite runs on every core (pyproject.toml's -n auto).
        "dev": ["tensorflow>=2.20", "jax>=0.4.30", "onnxruntime>=1.17", "ai-edge-litert>=1.0",
                "tf2onnx>=1.17", "onnx>=1.14", "pytest>=8", "pytest-xdist>=3.5", "matplotlib>=3.8",
                "tensorboard>=2.18", "faiss-cpu>=1.8", "ruff>=0.6", "openvino>=2024.0", "pymilvus>=3.0",
                "milvus-lite>=3.2", "fastapi>=0.110", "uvicorn>=0.29", "python-multipart>=0.0.9", "pillow>=10",
                "httpx>=0.27", "selenium>=4.20"],
    },
    cmdclass={"build_py": BuildWithBundledModel},
    entry_points={"console_scripts": ["keras-arcface=keras_arcface.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
