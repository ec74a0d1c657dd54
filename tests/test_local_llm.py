"""Kilde's generative backend against a real llama.cpp server (llama-cpp-python) with a small real model
(SmolLM2-135M-Instruct), as `make test-local-llm` starts it. Skipped unless KILDE_LOCAL_LLM_URL is set.

A 135M model rarely cites well, so these tests do not ask for a good answer: they ask that every face
gets a well-formed answer, generated or the extractive one with a notice that says why, that the prompt
fits the server's context as the server's own tokenizer counts it, and that a context that does not fit
is named as such."""

from __future__ import annotations

import os
import threading

import pytest

from assistant.answering.context import AskRequest, Delta
from assistant.build import build_assistant
from assistant.core.types import Answer, Turn
from assistant.testing.corpus import DEMO_QUESTION_EN, DEMO_QUESTION_NB

URL = os.environ.get("KILDE_LOCAL_LLM_URL")
MODEL = os.environ.get("KILDE_LOCAL_LLM_MODEL", "smollm2-135m-instruct")
N_CTX = int(os.environ.get("KILDE_LOCAL_LLM_N_CTX", "2048"))
pytestmark = [
    pytest.mark.local_llm,
    pytest.mark.slow,
    pytest.mark.skipif(not URL, reason="run with `make test-local-llm` (serves a local model)"),
]


def local_settings(built_index, **changes):
    values = {
        "llm_backend": "openai-compatible",
        "llm_base_url": URL,
        "llm_model": MODEL,
        "llm_context_tokens": N_CTX,
        "llm_max_tokens": 256,
        "llm_timeout_s": 60,
        "llm_first_token_timeout_s": 180,
        "llm_total_timeout_s": 600,
        "llm_max_retries": 0,
    }
    return built_index.replace(**(values | changes))


@pytest.fixture(scope="module")
def local(built_index, embedder):
    return build_assistant(local_settings(built_index), embedder=embedder)


def run(assistant, request: AskRequest) -> tuple[str, Answer]:
    events = list(assistant.stream(request))
    assert isinstance(events[-1], Answer) and all(isinstance(e, Delta) for e in events[:-1])
    return "".join(e.text for e in events[:-1]), events[-1]


def well_formed(answer: Answer) -> None:
    assert answer.backend in ("openai-compatible", "extractive")
    if answer.backend == "extractive":
        assert answer.notice, "a fallback always says why"
    else:
        assert any(s.supported for s in answer.sentences) or not answer.answerable
    assert "<passage" not in answer.answer and "<|" not in answer.answer


def test_the_server_is_reachable_and_lists_the_model(local):
    status = local.model_status()
    assert status["status"] == "ok" and status["model_listed"] is True, status


def test_prompt_tokens_are_counted_by_the_servers_tokenizer(local, encoding):
    text = "Artikkel 4 i avtalen sier at partene skal hjelpe hverandre med alle tilgjengelige midler."
    counts = local.generative.server.count_tokens([text])
    assert counts is not None and counts[0] > 0
    print(f"SmolLM2 counts {counts[0]} tokens where cl100k counts {len(encoding.encode(text))}")


@pytest.mark.parametrize("question", [DEMO_QUESTION_EN, DEMO_QUESTION_NB])
def test_an_answer_that_fits_the_context(local, question):
    _, answer = run(local, AskRequest(question))
    well_formed(answer)
    assert "context" not in (answer.notice or "") and "kontekst" not in (answer.notice or ""), answer.notice


def test_a_context_larger_than_the_servers_is_named_in_the_notice(built_index, embedder):
    wrong = build_assistant(
        local_settings(built_index, llm_context_tokens=16000, llm_max_tokens=600), embedder=embedder
    )
    _, answer = run(wrong, AskRequest(DEMO_QUESTION_EN, top_k=15))
    assert answer.notice and "context ran out" in answer.notice, answer.notice


def test_a_follow_up_is_condensed_into_a_searchable_question(local):
    history = (Turn("user", DEMO_QUESTION_EN), Turn("assistant", "Each side gives military help [1]."))
    _, answer = run(local, AskRequest("And what does Article 51 say?", history=history))
    well_formed(answer)
    assert answer.standalone_question and "51" in answer.standalone_question


def test_two_questions_at_once_both_finish(built_index, embedder):
    one_at_a_time = build_assistant(local_settings(built_index, llm_concurrency=1), embedder=embedder)
    answers: list[Answer] = []
    threads = [
        threading.Thread(target=lambda q=q: answers.append(one_at_a_time.ask(AskRequest(q))))
        for q in (DEMO_QUESTION_EN, DEMO_QUESTION_NB)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(900)
    assert len(answers) == 2
    for answer in answers:
        well_formed(answer)
        assert "broke off" not in (answer.notice or "")


def test_the_cli_answers_without_a_traceback(monkeypatch, built_index, tmp_path, capsys):
    from assistant.cli import main

    for var, value in {
        "KILDE_CONFIG": os.devnull,
        "KILDE_DATA_DIR": str(built_index.data_dir),
        "KILDE_CACHE_DIR": str(built_index.cache_dir),
        "KILDE_LLM_BASE_URL": URL,
        "KILDE_LLM_MODEL": MODEL,
        "KILDE_LLM_CONTEXT_TOKENS": str(N_CTX),
        "KILDE_LLM_MAX_TOKENS": "256",
        "KILDE_LLM_FIRST_TOKEN_TIMEOUT": "180",
    }.items():
        monkeypatch.setenv(var, value)
    assert main(["ask", "--backend", "openai-compatible", DEMO_QUESTION_EN]) == 0
    out = capsys.readouterr()
    assert out.out.strip() and "Traceback" not in out.err
