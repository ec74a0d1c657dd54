"""`kilde serve` / `kilde demo` refuse clearly before serving anything."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from assistant.cli import main
from assistant.testing.corpus import ROOT
from assistant.testing.servers import KILDE, printed_url, stop, wait_ready


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


def test_port_0_names_the_port_the_server_listens_on(built_index, tmp_path):
    env = {
        **os.environ,
        "KILDE_DATA_DIR": str(built_index.data_dir),
        "KILDE_CACHE_DIR": str(built_index.cache_dir),
        "KILDE_CONFIG": os.devnull,
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    for name in ("KILDE_HOST", "KILDE_PORT", "KILDE_AUTH_MODE"):
        env.pop(name, None)
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [KILDE, "serve", "--port", "0"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = printed_url(log_path, "Kilde is serving ", process)
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0"), url  # loopback by default
            wait_ready(url, 60, process)
        finally:
            stop(process)


def test_an_empty_host_is_refused_not_bound_to_every_address(env, capsys):
    assert main(["serve", "--data-dir", str(env), "--host", ""]) == 2
    err = capsys.readouterr().err
    assert "host must name the address to listen on, such as 127.0.0.1" in err and "Traceback" not in err


def test_a_host_that_is_no_address_here_is_named_as_such(env, monkeypatch, capsys):
    absent = "192.0.2.1"  # TEST-NET-1: documentation only, never an address of this machine
    with socket.socket() as probe:
        try:
            probe.bind((absent, 0))
            pytest.skip("this machine lets a program bind addresses it does not have")
        except OSError:
            pass
    monkeypatch.setenv("KILDE_AUTH_MODE", "session")  # 'none' refuses any address but loopback before binding
    assert main(["serve", "--data-dir", str(env), "--host", absent]) == 2
    err = capsys.readouterr().err
    assert f"Cannot listen on {absent} (" in err and "it is no address of this machine" in err
    assert "already running" not in err and "Traceback" not in err
