"""Fixtures for the browser tests: one real `kilde serve`, the app with the generative backend, two host-page
servers, Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from assistant.testing.corpus import ROOT
from assistant.testing.servers import CHROMIUM_ARGS, KildeProcess, ThreadServer, chromium_path, free_port


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


@pytest.fixture(scope="session")
def allowed_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def kilde_server(ui_index, allowed_port, artifacts):
    """`kilde serve` over the session index; only the allowed host-page origin may embed it."""
    server = KildeProcess(
        ui_index,
        artifacts / "kilde-serve.log",
        KILDE_ALLOWED_ORIGINS=f"http://127.0.0.1:{allowed_port}",
        KILDE_RATE_LIMIT="1000",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def host_pages(kilde_server, allowed_port):
    pages = HostPages(kilde_server.url, allowed_port).start()
    yield pages
    pages.stop()


@pytest.fixture(scope="session")
def foreign_pages(kilde_server):
    """Host pages on an origin that is not in KILDE_ALLOWED_ORIGINS."""
    pages = HostPages(kilde_server.url).start()
    yield pages
    pages.stop()


@pytest.fixture(scope="module")
def generative_server(ui_index, embedder, llm):
    """The real app (uvicorn on a loopback port) with the generative backend, and its assistant. A test may
    hold the scripted model's stream mid-answer: the timeout leaves it time to act before Kilde gives up."""
    from assistant.build import build_assistant
    from ui.server import create_app

    settings = llm.settings_for(
        ui_index,
        llm_timeout_s=30,
        llm_max_retries=0,
        rate_limit_per_minute=1000,
    )
    assistant = build_assistant(settings, embedder=embedder)
    server = ThreadServer(create_app(settings, assistant)).start()
    yield server, assistant
    server.stop()


@pytest.fixture(scope="package")  # Playwright's sync API keeps an event loop running until it closes
def browser():
    executable = chromium_path()
    if not executable:
        pytest.skip("Debian's chromium is not installed: run scripts/install-system-deps.sh")
    from playwright.sync_api import expect, sync_playwright

    # The machine running CI may be busy: give assertions as long as actions to come true.
    expect.set_options(timeout=30_000)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context; every dialog (alert, confirm, prompt) is recorded and dismissed."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    pg = context.new_page()
    pg.dialogs = []

    def on_dialog(dialog):
        pg.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.fixture
def screenshot(artifacts):
    """`screenshot(page, name)` saves `artifacts/<name>.png`. The tracked docs/img/<name>.png is replaced
    too only when asked for, with `docs=True` and KILDE_UPDATE_SCREENSHOTS=1 in the environment: a plain
    test run leaves the checkout as it was."""

    def take(page, name: str, docs: bool = False):
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path))
        if docs and os.environ.get("KILDE_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(path, ROOT / "docs" / "img" / path.name)
        return path

    return take
