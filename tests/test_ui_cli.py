"""`kilde serve` / `kilde demo` refuse clearly before serving anything."""

from __future__ import annotations

import os
import socket
import subprocess

import httpx
import pytest

from assistant.cli import main
from assistant.core.config import Settings
from assistant.core.errors import ConfigError
from assistant.testing.corpus import ROOT
from assistant.testing.servers import KILDE, has_ipv6_loopback, printed_url, stop, subprocess_env, wait_ready
from ui.listener import addresses_of, bind_all, bind_listeners, port_of


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
    env = subprocess_env(
        KILDE_DATA_DIR=str(built_index.data_dir),
        KILDE_CACHE_DIR=str(built_index.cache_dir),
        KILDE_CONFIG=os.devnull,
        GRADIO_ANALYTICS_ENABLED="False",
    )
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


def serve_env(built_index) -> dict[str, str]:
    env = {
        **os.environ,
        "KILDE_DATA_DIR": str(built_index.data_dir),
        "KILDE_CACHE_DIR": str(built_index.cache_dir),
        "KILDE_CONFIG": os.devnull,
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    for name in ("KILDE_HOST", "KILDE_PORT", "KILDE_AUTH_MODE"):
        env.pop(name, None)
    return env


def test_localhost_is_served_on_both_loopback_addresses(built_index, tmp_path):
    # It listened on 127.0.0.1 alone: a client that resolves localhost to ::1 first (a browser, curl, Node)
    # was refused there, or waited for its fallback.
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [KILDE, "serve", "--host", "localhost", "--port", "0"],
            env=serve_env(built_index),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = printed_url(log_path, "Kilde is serving ", process)
            port = int(url.rsplit(":", 1)[1])
            assert url == f"http://localhost:{port}"
            wait_ready(f"http://127.0.0.1:{port}", 60, process)
            addresses = ["127.0.0.1", "[::1]"] if has_ipv6_loopback() else ["127.0.0.1"]
            for address in addresses:
                for host in (address, "localhost"):  # the Host header a client sends either way
                    ready = httpx.get(f"http://{address}:{port}/readyz", headers={"Host": f"{host}:{port}"})
                    assert ready.status_code == 200, (address, host, ready.text)
            if not has_ipv6_loopback():
                pytest.skip("no ::1 on this machine: 127.0.0.1 alone was checked")
        finally:
            stop(process)


def test_localhost_names_both_loopback_addresses_on_one_port():
    wanted = {"127.0.0.1", "::1"} if has_ipv6_loopback() else {"127.0.0.1"}
    assert {sockaddr[0] for _, sockaddr in addresses_of("localhost")} == {"127.0.0.1", "::1"}
    listeners = bind_listeners(Settings(host="localhost", port=0))
    try:
        assert {s.getsockname()[0] for s in listeners} == wanted
        assert {s.getsockname()[1] for s in listeners} == {port_of(listeners)}  # --port 0: one port for all
    finally:
        for listener in listeners:
            listener.close()
    # An address itself is the one address, as before; the default stays 127.0.0.1 alone.
    assert [sockaddr[0] for _, sockaddr in addresses_of("127.0.0.1")] == ["127.0.0.1"]
    assert Settings().host == "127.0.0.1"


def test_an_address_this_machine_lacks_is_left_out_while_another_serves():
    absent = "192.0.2.1"  # TEST-NET-1, as in the test above: no address of this machine
    addresses = addresses_of("127.0.0.1") + addresses_of(absent)
    listeners = bind_all(addresses, 0)
    try:
        assert [s.getsockname()[0] for s in listeners] == ["127.0.0.1"]
    finally:
        for listener in listeners:
            listener.close()
    with pytest.raises(OSError):
        bind_all(addresses_of(absent), 0)  # alone, it is the error "no address of this machine" names


def test_a_port_taken_on_one_loopback_address_is_reported_and_nothing_stays_bound():
    if not has_ipv6_loopback():
        pytest.skip("no ::1 on this machine")
    with socket.socket(socket.AF_INET6) as taken:
        taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigError, match=f"Cannot listen on localhost:{port} .*Is Kilde already running"
        ):
            bind_listeners(Settings(host="localhost", port=port))
        with socket.socket() as again:  # the 127.0.0.1 socket bound before the failure was closed
            again.bind(("127.0.0.1", port))


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


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (
            ["--port", "7861"],
            "--port is for --transport http; stdio, the default transport, listens on no address",
        ),
        (["--host", "0.0.0.0"], "--host is for --transport http"),
        (["--transport", "stdio", "--port", "0"], "(kilde mcp --transport http --port 0)"),
    ],
)
def test_mcp_refuses_an_address_for_stdio(env, capsys, flags, says):
    # They were dropped unseen: `kilde mcp --port 7861` served stdio, waiting on the terminal for JSON.
    assert main(["mcp", "--data-dir", str(env), *flags]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
