"""Real helper processes on free 127.0.0.1 ports: `chroma run`, `kilde serve`, an ASGI app under uvicorn,
and Debian's Chromium for Playwright, and a reverse proxy that can fail on purpose. Nothing here is a mock."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from assistant.testing.corpus import ROOT

KILDE = str(Path(sys.executable).with_name("kilde"))
CHROMA = str(Path(sys.executable).with_name("chroma"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def checkout_pythonpath(existing: str | None = None) -> str:
    """A subprocess's PYTHONPATH: this checkout first, then `existing` (by default the PYTHONPATH the tests run
    with), its entries made absolute, so that they name the same folders from the subprocess's working folder."""
    existing = os.environ.get("PYTHONPATH", "") if existing is None else existing
    kept = [str(Path(entry).resolve()) for entry in existing.split(os.pathsep) if entry]
    return os.pathsep.join(dict.fromkeys([str(ROOT), *kept]))


def subprocess_env(base: Mapping[str, str] | None = None, **values: str) -> dict[str, str]:
    """The environment of a `kilde` (or other Python) subprocess: `base` (by default this process's environment)
    and `values`, with this checkout first on PYTHONPATH (`checkout_pythonpath`). The venv's editable install
    names one checkout; the tests may run another (a git worktree beside it), and a subprocess must run the code
    under test, not that checkout's."""
    env = {**(os.environ if base is None else base), **values}
    env["PYTHONPATH"] = checkout_pythonpath(env.get("PYTHONPATH"))
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def silent_port() -> Iterator[int]:
    """A free 127.0.0.1 port that takes connections (the kernel completes them) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def has_ipv6_loopback() -> bool:
    """Can a program here listen on ::1 (a machine or container without IPv6 cannot)?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def wait_http(url: str, timeout_s: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Until `url` answers 2xx; fails early if `process` (the server behind it) exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:  # refused, timed out, or an HTTPError such as 503 while starting
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def printed_url(log_path: Path, banner: str, process: subprocess.Popen, timeout_s: float = 240.0) -> str:
    """The `http://host:port` a server names in its log after `banner`: with --port 0, the only place its port
    is told. Fails early if the process exits first."""
    pattern = re.compile(re.escape(banner) + r"(http://[^/\s]+)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = pattern.search(log_path.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{process.args} exited with {process.returncode} before naming its URL:\n{log}"
            )
        time.sleep(0.2)
    raise TimeoutError(f"{process.args} named no URL within {timeout_s} s")


def wait_ready(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Until Kilde's server at `url` says it is ready (`/readyz` answers 200)."""
    wait_http(url + "/readyz", timeout, process)


def stop(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Terminate, then kill if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def chroma_server(path: Path, timeout_s: float = 60.0, port: int | None = None) -> Iterator[str]:
    """`chroma run --host 127.0.0.1` on `port` (a free one if None); yields its URL and stops it afterwards.
    A large store (the benchmarks' million chunks) needs a longer `timeout_s` to load. The same `path` and
    `port` again: the same server started again, as a client that kept its URL sees it."""
    with chroma_process(path, timeout_s, port) as (url, _):
        yield url


@contextmanager
def hung(process: subprocess.Popen) -> Iterator[None]:
    """`process` stopped (SIGSTOP) and continued afterwards: its sockets still accept connections, and nothing
    answers them, as a server that hangs."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


@contextmanager
def chroma_process(
    path: Path, timeout_s: float = 60.0, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`chroma_server`, yielding its process too (to be `hung`)."""
    port = port or free_port()
    log = open(path.parent / f"chroma-{port}.log", "wb")  # noqa: SIM115 - closed in finally, after the process
    process = subprocess.Popen(
        [CHROMA, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v2/heartbeat", timeout_s=timeout_s, process=process)
        yield url, process
    finally:
        stop(process)
        log.close()


class FailingProxy:
    """A reverse proxy on a free 127.0.0.1 port before the HTTP server at `target`: it passes every request on,
    and while `failure` is set, (status, content type, body), answers each with that instead, as a proxy whose
    server fails does (a 502 page), or as Chroma does when it fails (a 500 with its JSON error).

    `token`: (header, value) the proxy asks for, as a reverse proxy guarding a Chroma server with a token does: a
    request without that exact header is answered 401 with a page (`refused` counts them), and the header is not
    passed on. `trickle`: while set, seconds between the bytes of each answer, sent one at a time (each sooner than
    a client's read timeout, so only a bound on the whole answer stops waiting for it). `only`: while set, the
    failure and the trickle apply to the requests whose path holds it, the others pass as usual.

    Named in HTTP_PROXY, it is a forward proxy too: a request for an absolute URL (`GET http://192.0.2.1/v1/models`)
    is passed on to `target` as its path. `requested` holds what each request asked for, as the proxy received it."""

    def __init__(self, target: str, token: tuple[str, str] | None = None):
        import httpx

        proxy = self
        self.failure: tuple[int, str, bytes] | None = None
        self.trickle: float | None = None
        self.only: str | None = None
        self.refused = 0
        self.requested: list[str] = []
        upstream = httpx.Client(base_url=target, timeout=30, trust_env=False)

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                proxy.requested.append(self.path)
                chosen = proxy.only is None or proxy.only in self.path
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                dropped = ("host", "connection", token[0].lower() if token else "")
                if token is not None and self.headers.get(token[0]) != token[1]:
                    proxy.refused += 1
                    status, kind, body = (
                        401,
                        "text/html",
                        b"<html><body>401 Authorization Required</body></html>",
                    )
                elif proxy.failure is None or not chosen:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                    parts = urllib.parse.urlsplit(self.path)
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    answer = upstream.request(self.command, path, headers=headers, content=body)
                    status, kind, body = (
                        answer.status_code,
                        answer.headers.get("content-type", ""),
                        answer.content,
                    )
                else:
                    status, kind, body = proxy.failure
                head = (
                    f"HTTP/1.0 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                pause = proxy.trickle if chosen else None
                if pause is None:
                    self.wfile.write(head + body)
                    return
                try:
                    for byte in head + body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:  # the client stopped waiting and closed the connection
                    return

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

            def log_message(self, *args) -> None:  # quiet, as the other helpers' servers are
                pass

        self._upstream = upstream
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FailingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


class KildeProcess:
    """`kilde serve` in a subprocess on a free 127.0.0.1 port, over `settings`' data and cache dirs; `wrapper` is a
    command that runs it (`unshare -m …`, to serve from a mount of its own)."""

    def __init__(self, settings, log_path: Path, *, wrapper: Sequence[str] = (), **env_extra: str):
        self.wrapper = list(wrapper)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = subprocess_env(
            KILDE_DATA_DIR=str(settings.data_dir),
            KILDE_CACHE_DIR=str(settings.cache_dir),
            GRADIO_ANALYTICS_ENABLED="False",
            ANONYMIZED_TELEMETRY="False",
            **env_extra,
        )
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 240) -> KildeProcess:
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*self.wrapper, KILDE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            wait_ready(self.url, timeout, self.process)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise RuntimeError(f"kilde serve did not start:\n{self.log_path.read_text()[-3000:]}") from None
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout_s=15)
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class ThreadServer:
    """An ASGI app served by a real uvicorn on a free loopback port, in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", proxy_headers=False, lifespan="on"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 60) -> ThreadServer:
        self.thread.start()
        wait_ready(self.url, timeout)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def chromium_path() -> str | None:
    """Debian's Chromium (scripts/install-system-deps.sh), which Playwright drives; None if missing."""
    return shutil.which("chromium")
