"""The generative chain against a real provider. Runs only when OPENAI_API_KEY (backend `openai`) or
KILDE_LLM_BASE_URL (backend `openai-compatible`, with KILDE_LLM_MODEL) is set; skipped otherwise.

    KILDE_LLM_BASE_URL=http://127.0.0.1:11434/v1 KILDE_LLM_MODEL=llama3.1 \\
        .venv/bin/python -m pytest -q tests/test_generative_live.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.answering.context import AskRequest
from assistant.core.config import resolve_settings
from assistant.core.types import Turn
from assistant.testing.corpus import DEMO_QUESTION_EN, DEMO_QUESTION_NB, SEED_ID

BACKEND = (
    "openai-compatible"
    if os.environ.get("KILDE_LLM_BASE_URL")
    else "openai"
    if os.environ.get("OPENAI_API_KEY")
    else None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BACKEND is None, reason="set OPENAI_API_KEY or KILDE_LLM_BASE_URL for live tests"),
]


@pytest.fixture(autouse=True)
def no_network():
    """Overrides the conftest guard: these tests exist to reach the provider."""
    yield


@pytest.fixture(scope="module")
def live(built_index, embedder):
    from assistant.build import build_assistant

    settings = resolve_settings(
        {"data_dir": built_index.data_dir, "cache_dir": built_index.cache_dir, "llm_backend": BACKEND},
        environ=os.environ,
        config_file=Path("/nonexistent"),
    )
    return build_assistant(settings, embedder=embedder)


def test_live_english_answer_cites_the_seed_article(live):
    answer = live.ask(AskRequest(DEMO_QUESTION_EN))
    assert answer.notice is None, answer.notice
    assert answer.backend == BACKEND and answer.answerable and answer.language == "en"
    assert any(c.article_id == SEED_ID for c in answer.citations) and "[1]" in answer.answer
    assert answer.sentences and all(s.citations for s in answer.sentences)


def test_live_norwegian_question_is_answered_with_citations(live):
    answer = live.ask(AskRequest(DEMO_QUESTION_NB))
    assert answer.notice is None, answer.notice
    assert answer.answerable and any(c.article_id == SEED_ID for c in answer.citations)


def test_live_follow_up_is_condensed(live):
    history = (Turn("user", DEMO_QUESTION_EN), Turn("assistant", "Each side gives military help [1]."))
    answer = live.ask(AskRequest("And which article of the UN Charter does it refer to?", history=history))
    assert answer.notice is None, answer.notice
    assert answer.standalone_question and "51" in answer.answer
