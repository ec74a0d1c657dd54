"""Questions waiting for an answer slot must not hold the worker threads that every other sync route and
both Gradio faces share (AnyIO's default pool of 40): /healthz answers while 50 questions queue."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from assistant.testing.corpus import DEMO_QUESTION_EN
from assistant.testing.servers import ThreadServer

pytestmark = pytest.mark.integration

QUEUED = 50  # more than the default thread pool's 40 tokens


class HeldAssistant:
    """The real assistant, except that each `ask` waits until the test releases it."""

    def __init__(self, inner, release: threading.Event):
        self._inner = inner
        self._release = release
        self.entered = threading.Event()

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def ask(self, request):
        self.entered.set()
        self._release.wait(120)
        return self._inner.ask(request)


def test_healthz_answers_while_questions_queue_for_a_slot(built_index, assistant):
    from ui.server import create_app

    release = threading.Event()
    settings = built_index.replace(rate_limit_per_minute=0, ui_concurrency=1)
    held = HeldAssistant(assistant, release)
    server = ThreadServer(create_app(settings, held)).start()
    try:
        with (
            httpx.Client(timeout=180, limits=httpx.Limits(max_connections=QUEUED)) as client,
            ThreadPoolExecutor(QUEUED) as pool,
        ):
            asks = [
                pool.submit(client.post, server.url + "/api/ask", json={"question": DEMO_QUESTION_EN})
                for _ in range(QUEUED)
            ]
            try:
                assert held.entered.wait(60)
                time.sleep(2)  # the other questions arrive and queue
                health = httpx.get(server.url + "/healthz", timeout=10)  # before the fix: waited for a thread
                assert health.status_code == 200
                assert not any(f.done() for f in asks)  # all of them are still queued or held
            finally:
                release.set()
            assert [f.result().status_code for f in asks] == [200] * QUEUED
    finally:
        server.stop()
