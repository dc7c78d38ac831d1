"""Packaging for symcodec (dependencies pinned to the versions the project is tested with).

The codec itself (encode, decode, the Pillow plugin, the CLI) needs numpy, numba and Pillow, plus click and
tqdm for the command line. Extras: [train] faiss-cpu (k-means), [torch] torch (datasets, classifiers,
robustness), [eval] scikit-image, matplotlib, scipy, bjontegaard (BD-rate), pytorch-msssim (MS-SSIM),
pillow-jxl-plugin (JPEG XL baseline) (the eval harness; torchattacks 3.5.1 is installed by
the Makefile with --no-deps, as its metadata pins torchvision and requests 2.25), [ray] Ray Data (`convert
--engine ray`, `symcodec.data.ray.read_sym`), [test] pytest, hypothesis,
constriction (an independent ANS coder the tests check code lengths against) and atheris (coverage-guided
fuzzing, tools/fuzz.py).
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"', Path(__file__).with_name("symcodec").joinpath("version.py").read_text()).group(1)

setup(
    name="symcodec",
    version=VERSION,
    description="Symbolic (patch VQ) image codec and adversarial purifier, after SymDNN",
    python_requires=">=3.10,<3.15",
    packages=[*find_packages(include=["symcodec", "symcodec.*"]), "symcodec.codebooks", "symcodec.weights"],
    package_dir={"symcodec.codebooks": "codebooks", "symcodec.weights": "weights"},
    package_data={"symcodec.codebooks": ["*.symcb", "*.md"], "symcodec.weights": ["*.pt", "*.md"], "symcodec": ["py.typed"]},
    install_requires=["numpy==2.4.6", "numba==0.68.1", "pillow==13.0.0", "click==8.5.1", "tqdm==4.70.1"],
    extras_require={
        "train": ["faiss-cpu==1.15.1"],
        "torch": ["torch==2.13.0"],
        "eval": ["scikit-image==0.26.0", "matplotlib==3.11.2", "scipy==1.17.1", "bjontegaard==1.3.0",
                 "pytorch-msssim==1.0.0", "pillow-jxl-plugin==1.3.8"],
        "ray": ["ray[data]==2.60.0"],
        "test": ["pytest==9.2.0", "hypothesis==6.170.15", "constriction==0.5.0", "atheris==3.0.0"],
    },
    entry_points={"console_scripts": ["symcodec=symcodec.cli:main"]},
)
