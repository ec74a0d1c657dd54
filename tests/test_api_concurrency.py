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
from tests.held import Held

pytestmark = pytest.mark.integration

QUEUED = 50  # more than the default thread pool's 40 tokens


def test_healthz_answers_while_questions_queue_for_a_slot(built_index, assistant):
    from ui.server import create_app

    release = threading.Event()
    settings = built_index.replace(rate_limit_per_minute=0, ui_concurrency=1)
    held = Held(assistant, release)
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


class HeldSearches:
    """The real assistant, whose retriever waits until the test releases it."""

    def __init__(self, inner, release: threading.Event):
        self._inner = inner
        self.retriever = Held(inner.retriever, release, "retrieve")

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_a_search_without_a_turn_within_the_budget_is_busy(built_index, assistant):
    # /api/search waited for an answering slot without end: a flood of searches was never turned away, while
    # /api/ask answered 503 `busy` with Retry-After once its budget had passed.
    from ui.server import create_app

    release = threading.Event()
    settings = built_index.replace(rate_limit_per_minute=0, ui_concurrency=1, request_budget_s=1)
    held = HeldSearches(assistant, release)
    server = ThreadServer(create_app(settings, held)).start()
    search = {"query": DEMO_QUESTION_EN}
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, server.url + "/api/search", json=search, timeout=180)
            try:
                assert held.retriever.entered.wait(60)  # the one slot is taken
                for path, body in (("/api/search", search), ("/api/ask", {"question": DEMO_QUESTION_EN})):
                    refused = httpx.post(server.url + path, json=body, timeout=20)
                    assert refused.status_code == 503, (path, refused.text)
                    assert refused.json() == {
                        "error": "busy",
                        "message": "Kilde is busy: the question got no turn within 1 s; try again shortly.",
                    }
                    assert int(refused.headers["retry-after"]) >= 1
            finally:
                release.set()
            assert first.result().status_code == 200 and first.result().json()["passages"]
        # Its turn over, the next search is answered.
        assert httpx.post(server.url + "/api/search", json=search, timeout=120).status_code == 200
    finally:
        server.stop()
