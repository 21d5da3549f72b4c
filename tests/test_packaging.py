"""Library metadata: dependency ranges (never an exact pin), one version per distribution.

The exact CPU torch pin belongs to requirements-test.txt only; a user with another torch
must be able to install any plugin. `.ci/resolve_other_torch.py` checks the same with pip's
resolver, `.ci/check_wheels.py` builds and installs the wheels.
"""

import ast
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYPROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]
OTHER_TORCH = ("2.6.0", "2.13.0", "2.14.1")  # the range's floor, the test pin, a newer release


def requirements(project: dict) -> list[Requirement]:
    listed = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        listed += extra
    return [Requirement(text) for text in listed]


def exact_pins(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return [str(r) for r in requirements(project) if any(s.operator in ("==", "===") for s in r.specifier)]


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: p.parent.name)
def test_library_metadata_declares_ranges(pyproject):
    assert exact_pins(pyproject) == []
    project = tomllib.loads(pyproject.read_text())["project"]
    for requirement in requirements(project):
        if requirement.name == "torch":
            assert all(requirement.specifier.contains(v) for v in OTHER_TORCH), str(requirement)


def test_an_exact_torch_pin_is_caught(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.26", "torch==2.13.0"]\n')
    assert exact_pins(bad) == ["torch==2.13.0"]


def _version_literals(package: Path) -> list[str]:
    found = []
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
                found.append(str(module.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: p.parent.name)
def test_version_is_defined_once(pyproject):
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    packages = [ROOT / "core" / "segmentkit"] if pyproject.parent == ROOT else \
        sorted(pyproject.parent.glob("segmentkit_*"))
    literals = [hit for package in packages for hit in _version_literals(package)]
    if "version" in project:  # static in pyproject.toml: nowhere else
        assert "version" not in project.get("dynamic", []) and literals == []
    else:  # dynamic: read from exactly one __version__ literal
        attr = data["tool"]["setuptools"]["dynamic"]["version"]["attr"]
        assert "version" in project["dynamic"] and len(literals) == 1
        assert re.sub(r"\.__version__$", "", attr).replace(".", "/") in literals[0]
