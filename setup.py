"""Only what pyproject.toml cannot say statically: the top-level weights/ folder
is installed as the data package ``sdr2hdr.weights``, so a plain (non-editable)
install carries the default weights too."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["sdr2hdr", "sdr2hdr.*"]) + ["sdr2hdr.weights"],
    package_dir={"sdr2hdr.weights": "weights"},
)
