"""Packaging for symcodec (dependencies pinned to the versions the project is tested with)."""
from setuptools import find_packages, setup

setup(
    name="symcodec",
    version="0.1.0",
    description="Symbolic (patch VQ) image codec and adversarial purifier, after SymDNN",
    python_requires=">=3.10,<3.15",
    packages=[*find_packages(include=["symcodec", "symcodec.*"]), "symcodec.codebooks", "symcodec.weights"],
    package_dir={"symcodec.codebooks": "codebooks", "symcodec.weights": "weights"},
    package_data={"symcodec.codebooks": ["*.symcb", "*.md"], "symcodec.weights": ["*.pt", "*.md"], "symcodec": ["py.typed"]},
    install_requires=[
        "numpy==2.4.6",
        "numba==0.68.1",
        "faiss-cpu==1.15.1",
        "constriction==0.5.0",
        "pillow==13.0.0",
        "click==8.5.1",
        "tqdm==4.70.1",
        "torch==2.13.0",
    ],
    extras_require={
        "test": ["pytest==9.2.0", "hypothesis==6.170.15"],
        "bench": ["scikit-image==0.26.0", "matplotlib==3.11.2"],
    },
    entry_points={"console_scripts": ["symcodec=symcodec.cli:main"]},
)
