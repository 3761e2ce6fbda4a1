from pathlib import Path

from setuptools import find_packages, setup

version = {}
for line in Path("hebbian/__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)

setup(
    name="hebbian-ignite",
    version=version["__version__"],
    description="Hebbian (local) learning rules, trainers and visualizers for PyTorch and PyTorch-Ignite",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["hebbian", "hebbian.*"]),
    package_data={"hebbian": ["py.typed", "configs/*.yaml"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.2",
        "pytorch-ignite>=0.5.5",
        "torchvision>=0.17",
        "tensorboard>=2.14",
        "matplotlib>=3.7",
        "pyyaml>=6.0",
        "scikit-learn>=1.3",
        "tqdm>=4.60",
    ],
    extras_require={
        "test": ["pytest>=8", "nbmake>=1.5", "nbformat>=5.9", "jupytext>=1.16", "ipykernel>=6.0"],
        # the documentation site: sphinx-build -W -b html docs docs/_build/html (nbclient and ipykernel execute the
        # lessons' notebooks offered for download, so that they hold their outputs)
        "docs": ["sphinx>=7.2", "myst-parser>=2.0", "sphinx-gallery>=0.15", "furo>=2024.1", "pillow>=9.0",
                 "nbformat>=5.9", "nbclient>=0.8", "ipykernel>=6.0"],
    },
    entry_points={"console_scripts": ["hebbian=hebbian.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
