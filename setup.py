"""Build hook for setuptools (the metadata is in pyproject.toml): ship the top-level specs/ folder
as the package data of ``archc.specs`` (see the comment on [tool.setuptools.package-data])."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["archc", "archc.*"]), "archc.specs"], package_dir={"archc.specs": "specs"})
