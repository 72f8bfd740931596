"""The torch floor in one place: ``make test-torch-floor`` installs the Makefile's
``TORCH_FLOOR``, which must be the ``torch>=`` of pyproject.toml, and no constraints file pins
torch to anything else for that job."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_torch_floor() -> Version:
    text = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)
    assert deps, "pyproject.toml has no dependencies list"
    reqs = [Requirement(r) for r in re.findall(r'"([^"]+)"', deps.group(1))]
    torch = [r for r in reqs if r.name == "torch"]
    assert len(torch) == 1, "pyproject.toml must list torch once among its dependencies"
    floors = [Version(s.version) for s in torch[0].specifier if s.operator == ">="]
    assert len(floors) == 1, f"torch's requirement {torch[0]} has no single '>=' floor"
    return floors[0]


def _makefile_torch_floor() -> Version:
    found = re.findall(r"^TORCH_FLOOR\s*:?=\s*(\S+)\s*$", (ROOT / "Makefile").read_text(), re.M)
    assert len(found) == 1, "the Makefile must set TORCH_FLOOR once"
    return Version(found[0])


def test_makefile_floor_is_pyprojects_floor():
    assert _makefile_torch_floor() == _pyproject_torch_floor()


def test_floor_constraints_do_not_pin_torch():
    lines = (ROOT / "constraints-torch-floor.txt").read_text().splitlines()
    # every line is a comment or a requirement (none may be needed: then comments only)
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert all(r.name != "torch" for r in reqs)


def test_floor_recipe_installs_the_floor_and_replaces_the_newest_pin():
    """The recipe takes constraints.txt without its torch line and adds TORCH_FLOOR, so the
    floor job pins torch only there (a second torch pin would make pip fail or move it)."""
    text = (ROOT / "Makefile").read_text()
    assert "grep -v '^torch==' constraints.txt" in text
    assert 'echo "torch==$(TORCH_FLOOR)"' in text
    assert re.search(r"^torch==\S+$", (ROOT / "constraints.txt").read_text(), re.M)
