"""Dependencies: ranges that admit Colab, pins that CI tests, and the two kept in step."""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parent.parent

# What Google Colab's GPU runtime ships (its public package list): the ranges must admit
# these, or installing the course there would reinstall them.
COLAB = {"tensorflow": "2.20.0", "keras": "3.13.2", "tensorflow-datasets": "4.9.10",
         "numpy": "2.0.2", "matplotlib": "3.10.0", "scikit-learn": "1.6.1",
         "scikit-image": "0.25.2", "importlib-resources": "7.1.0", "tqdm": "4.67.3",
         "ipykernel": "6.17.1", "nbclient": "0.10.4", "pytest": "8.4.2"}


def _name(requirement):
    return re.sub(r"[-_.]+", "-", requirement.name).lower()


def _requirements_txt():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {_name(r): r for r in (Requirement(line) for line in lines
                                   if line.strip() and not line.startswith(("#", "-")))}


def _pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_name(r): r for r in map(Requirement, project["dependencies"])}


def _lock():
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            pins[_name(requirement)] = Version(str(requirement.specifier).lstrip("="))
    return pins


def test_pyproject_and_requirements_agree():
    requirements = _requirements_txt()
    for name, requirement in _pyproject().items():
        assert name in requirements, f"{name} is in pyproject.toml but not requirements.txt"
        assert requirement.specifier == requirements[name].specifier, name


def test_ranges_admit_what_colab_ships():
    requirements = _requirements_txt()
    for name, version in COLAB.items():
        if name in requirements:
            assert requirements[name].specifier.contains(version), (
                f"{name} {version} (Colab) is outside {requirements[name].specifier}")


def test_lock_pins_every_requirement_inside_its_range():
    pins = _lock()
    for name, requirement in _requirements_txt().items():
        assert name in pins, f"{name} is not pinned in requirements-lock.txt (run make lock)"
        assert requirement.specifier.contains(pins[name]), (
            f"{name}=={pins[name]} in the lock is outside {requirement.specifier}")
    assert "importlib-resources" in pins  # tensorflow-datasets needs it but does not say so


def test_bundled_data_ships_with_the_package():
    """Files the library reads at run time are package data, so a non-editable install
    (Colab's `pip install git+...`) has them too."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["course_lib.data"]
    bundled = sorted(p.relative_to(ROOT / "course_lib" / "data").as_posix()
                     for p in (ROOT / "course_lib" / "data" / "bundled").iterdir())
    from fnmatch import fnmatch

    for name in bundled:
        assert any(fnmatch(name, pattern) for pattern in package_data), (
            f"course_lib/data/{name} is not in [tool.setuptools.package-data]")
