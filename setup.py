"""keras-arcface: margin-based softmax heads and a face-recognition model zoo for Keras 3."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

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
    package_data={"keras_arcface": ["demo_data/README.md", "demo_data/pairs.txt", "demo_data/faces/*/*.jpg"],
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
        # ROC curves and the README's figure.
        "plots": ["matplotlib>=3.8"],
        # `train --tensorboard` (TensorFlow 2.21 no longer installs it).
        "tensorboard": ["tensorboard>=2.18"],
        # Tests (TensorFlow and JAX backends) and everything optional.
        "dev": ["tensorflow>=2.20", "jax>=0.4.30", "onnxruntime>=1.17", "ai-edge-litert>=1.0",
                "tf2onnx>=1.17", "onnx>=1.14", "pytest>=8", "matplotlib>=3.8", "tensorboard>=2.18"],
    },
    entry_points={"console_scripts": ["keras-arcface=keras_arcface.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
