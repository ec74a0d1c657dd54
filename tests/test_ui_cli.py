"""`kilde serve` / `kilde demo` refuse clearly before serving anything."""

from __future__ import annotations

import os
import socket

import pytest

from assistant.cli import main


@pytest.fixture
def env(monkeypatch, tiktoken_cache, tmp_path):
    for name in ("KILDE_AUTH_MODE", "KILDE_HOST", "KILDE_PORT", "KILDE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KILDE_CACHE_DIR", str(tiktoken_cache))
    monkeypatch.setenv("KILDE_CONFIG", os.devnull)
    return tmp_path


def test_serve_without_an_index_names_the_command_that_builds_it(env, capsys):
    assert main(["serve", "--data-dir", str(env / "empty"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "No Kilde index found" in err and "kilde ingest corpus/" in err and "Traceback" not in err


def test_auth_mode_none_refuses_a_public_address(env, capsys):
    assert main(["demo", "--data-dir", str(env), "--host", "0.0.0.0"]) == 2
    assert "KILDE_AUTH_MODE=session or proxy" in capsys.readouterr().err


def test_a_busy_port_is_reported_with_the_fix(env, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--data-dir", str(env), "--port", str(port)]) == 2
    assert "--port" in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "kilde ingest corpus/" in out
