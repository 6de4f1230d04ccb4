"""Package discovery; everything else is declared in pyproject.toml.

Python packages are found, not listed, so a new module can never be left out of the
wheel. templates/ and firmware/ sit at the top of the repository (C and Jinja2 text,
no Python) and ship inside the package as edgewave/templates and edgewave/firmware,
a mapping pyproject.toml's package-dir declares and `find` cannot discover.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["edgewave", "edgewave.*"]) + ["edgewave.templates", "edgewave.firmware"])
