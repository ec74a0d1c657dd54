"""constraints.txt pins what `make install`, `make setup` and `make train-reader` install: every dependency the
project names is pinned there, at a version its range in pyproject.toml allows."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, Version]:
    out = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt:{number}: {line!r} is not NAME==VERSION"
        assert canonicalize_name(name) not in out, f"constraints.txt:{number}: {name} pinned twice"
        out[canonicalize_name(name)] = Version(version)
    return out


def requirements() -> list[tuple[str, Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    named = [("dependencies", r) for r in project["dependencies"]]
    named += [(f"[{extra}]", r) for extra, rs in project["optional-dependencies"].items() for r in rs]
    return [(where, Requirement(r)) for where, r in named]


@pytest.mark.parametrize(("where", "requirement"), requirements(), ids=lambda v: str(v))
def test_every_dependency_is_pinned_within_its_range(where, requirement):
    pinned = pins().get(canonicalize_name(requirement.name))
    assert pinned is not None, f"{requirement.name} ({where}) is not in constraints.txt: run make constraints"
    assert requirement.specifier.contains(pinned, prereleases=True), (
        f"constraints.txt pins {requirement.name}=={pinned}, outside {where}'s {requirement.specifier}"
    )


def test_the_makefiles_install_through_the_constraints():
    makefiles = [ROOT / "Makefile", ROOT / "evals" / "eval.mk"]
    installs = [
        line.strip()
        for path in makefiles
        for line in path.read_text(encoding="utf-8").splitlines()
        if "pip install" in line or "PIP_INSTALL)" in line
    ]
    project_installs = [line for line in installs if " -e " in line and "--upgrade -e" not in line]
    assert project_installs, "no install of the project found in the Makefiles"
    for line in project_installs:
        assert line.startswith("$(PIP_INSTALL)"), f"installs without constraints.txt: {line}"
    definition = next(
        line
        for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
        if line.startswith("PIP_INSTALL")
    )
    assert "--constraint constraints.txt" in definition
