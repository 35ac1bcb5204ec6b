"""requirements.lock and pyproject.toml agree: every declared dependency is locked at a version its range
admits, and the lock holds nothing but exact pins (tools/lock.py writes it; the Makefile installs with it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)")


def declared() -> list[Requirement]:
    """pyproject.toml's dependencies and its dev extras (what `make test` installs)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def locked(path: Path = ROOT / "requirements.lock") -> dict[str, str]:
    """Canonical name -> pinned version; a line that is not one exact pin, or a package pinned twice, is refused."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.fullmatch(line.strip())
        if match is None:
            raise ValueError(f"{path.name}: {line!r} is not an exact pin name==version")
        name = canonicalize_name(match[1])
        if name in pins:
            raise ValueError(f"{path.name}: {name} is pinned twice")
        pins[name] = match[2]
    return pins


def disagreements(requirements: list[Requirement], pins: dict[str, str]) -> list[str]:
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is declared but not in requirements.lock")
        elif Version(pins[name]) not in requirement.specifier:
            problems.append(f"{requirement} is declared but requirements.lock pins {name}=={pins[name]}")
    return problems


def test_every_declared_dependency_is_locked_inside_its_declared_range() -> None:
    assert disagreements(declared(), locked()) == []


def test_the_lock_pins_only_packages_never_the_project_itself() -> None:
    pins = locked()
    assert len(pins) > len(declared()), "transitive dependencies are locked too"
    assert "densenas" not in pins, "the project is installed from the checkout, never pinned"


def test_torch_and_torchvision_are_locked_as_a_matching_pair() -> None:
    """torchvision imports only beside the torch it was built for: torch 2.N goes with torchvision 0.(N+15)."""
    pins = locked()
    torch, vision = Version(pins["torch"]), Version(pins["torchvision"])
    assert (torch.major, vision.major, vision.minor - torch.minor) == (2, 0, 15), (torch, vision)


def test_a_pin_outside_its_range_a_missing_pin_and_a_loose_line_are_each_caught(tmp_path: Path) -> None:
    requirements = [Requirement("optuna>=5.0,<5.2"), Requirement("psycopg[binary]>=3.1")]
    assert disagreements(requirements, {"optuna": "5.1.0", "psycopg": "3.3.9"}) == []
    assert disagreements(requirements, {"optuna": "5.2.0"}) == [
        "optuna<5.2,>=5.0 is declared but requirements.lock pins optuna==5.2.0",
        "psycopg[binary]>=3.1 is declared but not in requirements.lock",
    ]
    lock = tmp_path / "requirements.lock"
    lock.write_text("optuna>=5\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        locked(lock)
    lock.write_text("Optuna==5.0.0\noptuna==5.1.0\n")
    with pytest.raises(ValueError, match="pinned twice"):
        locked(lock)
