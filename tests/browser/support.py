"""Test helpers for the UI: the index with hostile articles, real servers on free loopback ports, Chromium.

Shipped test code, shared by tests/browser/ and tests/test_api*.py. Nothing here is a mock: the index is
built by the real pipeline, `kilde serve` runs as a subprocess, and the API tests' server is uvicorn.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def hostile_cases() -> list[dict]:
    return json.loads((HOSTILE / "cases.json").read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_ui_index(tmp_path_factory, built_index, embedder):
    """The session index (seed + distractors) plus the twelve hostile articles, built once per session.

    The session index is copied, not changed, and only the hostile files are ingested into the copy.
    A marker file makes this idempotent, so several test modules can ask for it.
    """
    from assistant.build import build_pipeline

    target = tmp_path_factory.getbasetemp() / "ui-index"
    settings = built_index.replace(data_dir=target)
    marker = target / ".ui-index-complete"
    if marker.exists():
        return settings
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(built_index.data_dir, target)
    files = [HOSTILE / case["file"] for case in hostile_cases()]
    report = build_pipeline(settings, embedder=embedder).ingest(files)
    assert not report.rejected, report.rejected
    assert report.added == len(files), report.to_dict()
    marker.write_text("ok")
    return settings


def wait_ready(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout} s")


class KildeProcess:
    """`kilde serve` in a subprocess on a free 127.0.0.1 port."""

    def __init__(self, settings, log_path: Path, **env_extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, "KILDE_DATA_DIR": str(settings.data_dir), "KILDE_CACHE_DIR": str(settings.cache_dir),
                    "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False", **env_extra}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 240) -> KildeProcess:
        kilde = Path(sys.executable).with_name("kilde")
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([str(kilde), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_ready(self.url, timeout, self.process)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise RuntimeError(f"kilde serve did not start:\n{self.log_path.read_text()[-3000:]}") from None
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class ThreadServer:
    """An ASGI app served by a real uvicorn on a free loopback port, in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    proxy_headers=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 60) -> ThreadServer:
        self.thread.start()
        wait_ready(self.url, timeout)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class HostPages:
    """The sample host pages (ui/widget.py) served from another loopback port: another origin."""

    def __init__(self, kilde_url: str, port: int | None = None):
        from ui.widget import host_server

        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.server = host_server(kilde_url, "127.0.0.1", self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HostPages:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def chromium_path() -> str | None:
    return shutil.which("chromium")
