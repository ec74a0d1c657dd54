"""A `kilde` subprocess runs the checkout under test. The venv's editable install names one checkout; the tests may
run another (a git worktree beside it), and a subprocess that imported the installed one would test other code.
In the checkout the install names, these pass whether or not the helpers set PYTHONPATH: run them in a worktree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.testing.corpus import ROOT, make_settings
from assistant.testing.servers import KildeProcess, subprocess_env

PACKAGES = ("assistant", "ingest", "prompts", "ui", "evals")
HELPERS = (
    "subprocess_env",
    "KildeProcess",
    "test_mcp_server.kilde_env",
    "test_key_exposure.kilde_env",
    "test_api.cli_env",
)
# -P: no script or working folder first on sys.path, as for the `kilde` script, whose folder holds no package.
PROBE = (
    "import importlib, json, sys; "
    f"print(json.dumps({{name: importlib.import_module(name).__file__ for name in {PACKAGES!r}}} | "
    "{'path': sys.path}))"
)


def helper_environments(tmp_path: Path) -> dict[str, dict[str, str]]:
    """The environment each helper that starts `kilde` gives it."""
    from tests.test_api import cli_env
    from tests.test_key_exposure import kilde_env as exposure_env
    from tests.test_mcp_server import kilde_env as mcp_env

    settings = make_settings(tmp_path / "index", tmp_path / "cache")
    envs = {
        "subprocess_env": subprocess_env(),
        "KildeProcess": KildeProcess(settings, tmp_path / "serve.log").env,
        "test_mcp_server.kilde_env": mcp_env(settings),
        "test_key_exposure.kilde_env": exposure_env(settings, tmp_path),
        "test_api.cli_env": cli_env(settings),
    }
    assert set(envs) == set(HELPERS)
    return envs


def imported_by(env: dict[str, str], cwd: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-P", "-c", PROBE], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("helper", HELPERS)
def test_a_kilde_subprocess_imports_the_checkout_under_test(helper, tmp_path, monkeypatch):
    """From another working folder, with a PYTHONPATH of the tests' own (relative, as `PYTHONPATH=.` is) kept
    after the checkout."""
    kept = tmp_path / "kept"
    kept.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", "kept")
    env = helper_environments(tmp_path)[helper]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    got = imported_by(env, elsewhere)
    for name in PACKAGES:
        assert Path(got[name]).resolve().is_relative_to(ROOT), (name, got[name], ROOT)
    path = [str(Path(p).resolve()) for p in got["path"] if p]
    assert path.index(str(ROOT)) < path.index(str(kept.resolve()))


def test_the_tests_own_pythonpath_is_kept_after_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "PYTHONPATH", f"{tmp_path / 'a'}{os.pathsep}{os.pathsep}{ROOT}"
    )  # an empty entry, ROOT again
    for env in (subprocess_env(), subprocess_env({"PATH": "/bin"}), subprocess_env(KILDE_DATA_DIR="x")):
        assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), str(tmp_path / "a")]
    given = subprocess_env({"PYTHONPATH": str(tmp_path / "b")})  # a base's own PYTHONPATH, kept instead
    assert given["PYTHONPATH"].split(os.pathsep) == [str(ROOT), str(tmp_path / "b")]
    monkeypatch.delenv("PYTHONPATH")
    assert subprocess_env()["PYTHONPATH"] == str(ROOT)
