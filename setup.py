"""Package list of foundation-jets (everything else is in pyproject.toml).

pyproject.toml cannot add a renamed package to ``packages.find``: the shipped ``checkpoints/``
folder (top level of the repository) is installed as the package ``foundation_checkpoints``,
so that a wheel carries every checkpoint folder in it without a list to maintain. The detector
cards folder holds data only (no ``__init__.py``) and is named as a package for its YAML files.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["foundation", "foundation.*", "heads", "heads.*"]),
        "foundation.simulation.cards",
        "foundation_checkpoints",
    ],
    package_dir={"foundation_checkpoints": "checkpoints"},
)
