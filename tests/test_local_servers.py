"""Generative answers against what local model servers (llama.cpp, llama-cpp-python, vLLM, Ollama) do, as
the scripted server in assistant/testing/ reproduces it: HTTP 200 then an empty stream, a context window
smaller than the prompt, their own tokenizers and `/tokenize`, `max_tokens` only, one slot that a second
request interrupts, any model name, 404 without `/v1`, streams of text the post-check strips. Each case
of issue 18 ends in a generative answer that fits, or in the extractive answer with a notice that says
what went wrong, in the question's language, on every face (CLI, /api/ask, the chat)."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from assistant.answering.condense import condense_extractive
from assistant.answering.context import AskRequest, Delta
from assistant.build import build_assistant
from assistant.core.config import resolve_settings
from assistant.core.errors import ConfigError
from assistant.core.types import Answer, Turn
from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB
from assistant.testing.scripted_llm import Reply, ScriptedLLMServer
from assistant.testing.servers import ThreadServer, free_port

KEY = "sk-kilde-DUMMY-0123456789abcdef"
NO_FILE = Path("/nonexistent/kilde.toml")
ARTICLE4_EN = (
    "Article 4 says that if one party faces an armed invasion and is in a state of war, the other "
    "will immediately use all available means to provide military and other assistance."
)
ARTICLE4_NB = "Artikkel 4 sier at den andre parten umiddelbart skal gi militær og annen hjelp."
UNCITED_EN = "Article 4 is about how the two countries will help each other. It matters a great deal."
PARTIAL_TAG = (
    '<passage id="9" title="Nord-Korea og Russland inngår forsvarspakt" date="2024-11-27" source="Geopolit'
)


def settings_for(built_index, server_url: str, **changes):
    values = {
        "llm_backend": "openai-compatible",
        "llm_base_url": server_url,
        "llm_model": "scripted-7b",
        "llm_timeout_s": 3,
        "llm_first_token_timeout_s": 3,
        "llm_max_retries": 1,
        "llm_api_key": KEY,
    }
    return built_index.replace(**(values | changes))


def model_tokenizer(encoding, factor: float):
    """A local model's tokenizer that counts `factor` times as many tokens as cl100k."""
    return lambda text: list(range(math.ceil(len(encoding.encode(text, disallowed_special=())) * factor)))


def run(assistant, request: AskRequest) -> tuple[str, Answer]:
    events = list(assistant.stream(request))
    assert isinstance(events[-1], Answer) and all(isinstance(e, Delta) for e in events[:-1])
    return "".join(e.text for e in events[:-1]), events[-1]


@pytest.fixture(scope="module")
def generative(built_index, embedder, llm):
    return build_assistant(settings_for(built_index, llm.url), embedder=embedder)


@pytest.fixture(autouse=True)
def fresh_script(llm):
    llm.reset()
    yield


# -- 1. HTTP 200 and then an empty stream --------------------------------------------------------------


def test_an_empty_stream_is_a_model_failure_with_a_notice(generative, llm):
    llm.script(Reply(empty=True))
    _, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "extractive" and answer.answerable and not answer.partial
    assert "empty reply" in answer.notice and "KILDE_LLM_CONTEXT_TOKENS" in answer.notice
    assert answer.citations[0].quote.startswith(ARTICLE4_OPENING)


def test_an_empty_stream_falls_back_on_the_cli(monkeypatch, built_index, llm, tmp_path, capsys):
    from assistant.cli import main

    for var, value in {
        "KILDE_CONFIG": os.devnull,
        "KILDE_DATA_DIR": str(built_index.data_dir),
        "KILDE_CACHE_DIR": str(built_index.cache_dir),
        "KILDE_LLM_BASE_URL": llm.url,
        "KILDE_LLM_MODEL": "scripted-7b",
        "KILDE_LLM_API_KEY": KEY,
    }.items():
        monkeypatch.setenv(var, value)
    llm.script(Reply(empty=True))
    assert main(["ask", "--backend", "openai-compatible", DEMO_QUESTION_EN]) == 0
    out = capsys.readouterr()
    assert ARTICLE4_OPENING in out.out and "empty reply" in out.out and "Traceback" not in out.err


def test_an_empty_stream_falls_back_through_the_api_and_the_chat(generative, built_index, llm, tmp_path):
    from ui.feedback import FeedbackLog
    from ui.handlers import ChatHandlers
    from ui.limits import RateLimiter
    from ui.server import create_app

    server = ThreadServer(
        create_app(generative.settings.replace(rate_limit_per_minute=1000), generative)
    ).start()
    try:
        llm.script(Reply(empty=True))
        response = httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
    finally:
        server.stop()
    assert response.status_code == 200, response.text
    assert response.json()["backend"] == "extractive" and "empty reply" in response.json()["notice"]

    llm.script(Reply(empty=True))
    chat = ChatHandlers(generative, RateLimiter(30), FeedbackLog(tmp_path / "feedback.jsonl"))
    *_, last = chat.respond(DEMO_QUESTION_EN, "", "", [], [], "en", None, None)
    conversation, _sources, _article, answer, _, _state = last
    assert answer["backend"] == "extractive" and "empty reply" in answer["notice"]
    assert "empty reply" in conversation


# -- 2. uncited generated text -------------------------------------------------------------------------


def test_an_answer_with_no_supported_sentence_is_replaced_with_a_notice(generative, llm):
    llm.script(Reply(UNCITED_EN))
    streamed, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "extractive" and answer.answerable and not answer.partial
    assert answer.citations[0].quote.startswith(ARTICLE4_OPENING)
    assert "replaced" in answer.notice and "broke off" not in answer.notice
    assert streamed.startswith("Article 4 is about") and streamed.rstrip().endswith(answer.answer)


def test_a_norwegian_uncited_answer_gets_a_norwegian_notice(generative, llm):
    llm.script(Reply("Artikkel 4 handler om hvordan landene skal hjelpe hverandre."))
    _, answer = run(generative, AskRequest(DEMO_QUESTION_NB))
    assert answer.backend == "extractive" and answer.language == "nb"
    assert answer.notice.startswith("Det genererte svaret ble erstattet") and "generated" not in answer.notice


def test_one_supported_sentence_keeps_the_generated_answer_and_flags_the_rest(generative, llm):
    llm.script(Reply(f"{ARTICLE4_EN} [1] This shows how close the two countries have become."))
    _, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "openai-compatible"
    assert [s.supported for s in answer.sentences] == [True, False]


# -- 3. prompt tokens counted as the server counts them ----------------------------------------------------


@pytest.mark.parametrize("api, overflow", [("llama.cpp", "error"), ("vllm", "empty")])
def test_the_prompt_is_fitted_with_the_servers_own_tokenizer(built_index, embedder, encoding, api, overflow):
    tokenizer = model_tokenizer(encoding, 1.7)
    with ScriptedLLMServer(tokenizer=tokenizer, n_ctx=1600, overflow=overflow, tokenize_api=api) as server:
        assistant = build_assistant(
            settings_for(built_index, server.url, llm_context_tokens=1600, llm_max_tokens=300),
            embedder=embedder,
        )
        server.script(Reply(f"{ARTICLE4_EN} [1]"), Reply(f"{ARTICLE4_EN} [1]"))
        _, first = run(assistant, AskRequest(DEMO_QUESTION_EN))
        _, second = run(assistant, AskRequest(DEMO_QUESTION_EN))
        for answer in (first, second):
            assert answer.backend == "openai-compatible" and answer.notice is None, answer.notice
        assert not [o for o in server.outcomes if o.startswith("overflow")]
        for chat in server.chat_requests:
            assert server.prompt_tokens(chat.body["messages"]) <= 1600 - 300
            assert ARTICLE4_OPENING in chat.body["messages"][-1]["content"]
        probes = [
            r
            for r in server.requests
            if r.path == "/tokenize" and "Kilde" in (r.body.get("content"), r.body.get("prompt"))
        ]
        assert probes and max(p.at for p in probes) < server.chat_requests[0].at, "probed once, then used"


def test_without_a_tokenizer_endpoint_a_safety_margin_keeps_the_prompt_inside(
    built_index, embedder, encoding
):
    # 1.23: the most that SmolLM2 counted over cl100k on Kilde's prompts (857 vs 698). The passages fill the
    # window, so a prompt counted by cl100k alone would overflow it.
    with ScriptedLLMServer(tokenizer=model_tokenizer(encoding, 1.23), n_ctx=1300, overflow="empty") as server:
        assistant = build_assistant(
            settings_for(built_index, server.url, llm_context_tokens=1300, llm_max_tokens=100),
            embedder=embedder,
        )
        server.script(Reply(f"{ARTICLE4_EN} [1]"))
        _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
        assert answer.backend == "openai-compatible" and answer.notice is None, answer.notice
        assert server.outcomes == ["done"]


def test_the_context_size_is_read_from_the_environment():
    settings = resolve_settings(environ={"KILDE_LLM_CONTEXT_TOKENS": "4096"}, config_file=NO_FILE)
    assert settings.llm_context_tokens == 4096


@pytest.mark.parametrize(
    "overflow, said",
    [
        ("error", "the model's context ran out"),
        ("empty", "most likely because the model's context ran out"),
    ],
)
def test_a_context_smaller_than_configured_is_named_in_the_notice(
    built_index, embedder, encoding, overflow, said
):
    with ScriptedLLMServer(tokenizer=model_tokenizer(encoding, 1.0), n_ctx=700, overflow=overflow) as server:
        assistant = build_assistant(
            settings_for(built_index, server.url), embedder=embedder
        )  # 8000 configured
        server.script(Reply(f"{ARTICLE4_EN} [1]"))
        _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
        assert answer.backend == "extractive" and said in answer.notice
        assert "KILDE_LLM_CONTEXT_TOKENS" in answer.notice and "llm_max_tokens" not in answer.notice


def test_an_answer_cut_by_the_servers_context_does_not_blame_max_tokens(built_index, embedder, encoding):
    tokenizer = model_tokenizer(encoding, 1.0)
    long_reply = " ".join([f"{ARTICLE4_EN} [1]"] * 12)
    with ScriptedLLMServer(tokenizer=tokenizer, n_ctx=100_000) as server:
        assistant = build_assistant(settings_for(built_index, server.url), embedder=embedder)
        server.script(Reply(f"{ARTICLE4_EN} [1]"))
        run(assistant, AskRequest(DEMO_QUESTION_EN))
        server.n_ctx = (
            server.prompt_tokens(server.chat_requests[-1].body["messages"]) + 90
        )  # room for ~90 tokens
        server.script(Reply(long_reply))
        _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "openai-compatible" and answer.partial, answer.notice
    assert "the model's context ran out" in answer.notice and "llm_max_tokens" not in answer.notice


def test_a_server_that_ignores_max_completion_tokens_is_still_limited(built_index, embedder, encoding):
    tokenizer = model_tokenizer(encoding, 1.0)
    long_reply = " ".join([f"{ARTICLE4_EN} [1]"] * 12)
    with ScriptedLLMServer(tokenizer=tokenizer, honour_max_completion_tokens=False) as server:
        assistant = build_assistant(
            settings_for(built_index, server.url, llm_max_tokens=80), embedder=embedder
        )
        server.script(Reply(long_reply))
        _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
        assert len(tokenizer(server.generated[-1])) <= 80
    assert answer.backend == "openai-compatible" and answer.partial and "llm_max_tokens" in answer.notice


# -- 4. deadlines ----------------------------------------------------------------------------------------


def test_a_slow_first_token_is_waited_for_beyond_the_silence_limit(built_index, embedder, llm):
    assistant = build_assistant(
        settings_for(built_index, llm.url, llm_timeout_s=1, llm_first_token_timeout_s=8), embedder=embedder
    )
    llm.script(Reply(f"{ARTICLE4_EN} [1]", delay_s=2.5))
    _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "openai-compatible" and answer.notice is None


def _wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("lead, said", [("", "no reply within 1 s"), ("Article 4 says ", "longer than 2 s")])
def test_a_stream_of_stripped_tags_is_ended_by_a_deadline(built_index, embedder, llm, lead, said):
    assistant = build_assistant(
        settings_for(
            built_index, llm.url, llm_timeout_s=3, llm_first_token_timeout_s=1, llm_total_timeout_s=2
        ),
        embedder=embedder,
    )
    llm.script(
        Reply(chunks=[lead, *["<step> "] * 600], chunk_delay_s=0.02)
    )  # 12 s of tags if nobody stops it
    _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "extractive" and said in answer.notice
    assert _wait_for(lambda: llm.outcomes == ["aborted"]), f"the stream was not closed: {llm.outcomes}"


def test_a_stop_given_ends_the_answer_while_its_model_is_silent_and_closes_its_stream(
    built_index, embedder, llm
):
    # A caller that no longer wants the answer (an MCP client cancelled its call) gives its `Stop`: the answer
    # ends at once, while the model is silent, not at the model's next words or its last; the stream is closed
    # when the model writes again, which tells it to stop.
    from assistant.core.stopping import Stop, Stopped

    assistant = build_assistant(
        settings_for(built_index, llm.url, llm_timeout_s=300, llm_first_token_timeout_s=300),
        embedder=embedder,
    )
    wake, stalling = threading.Event(), threading.Event()
    llm.script(
        Reply(
            chunks=[f"{ARTICLE4_EN} [1]", *[" And more."] * 200],
            stall_after=1,
            stall_s=300,
            wake=wake,
            stalling=stalling,
        )
    )
    stop, ended = Stop(), []

    def ask() -> None:
        try:
            ended.append(assistant.ask(AskRequest(DEMO_QUESTION_EN, stop_signal=stop)))
        except Stopped:
            ended.append("stopped")

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        assert stalling.wait(120)  # the model has written its first words, and is silent
        stop.give()
        asking.join(120)
        assert not asking.is_alive() and ended == ["stopped"]
    finally:
        wake.set()
    assert _wait_for(lambda: llm.outcomes == ["aborted"]), f"the stream was not closed: {llm.outcomes}"


def test_a_timed_out_request_is_not_retried(built_index, embedder, llm):
    assistant = build_assistant(
        settings_for(built_index, llm.url, llm_timeout_s=1, llm_first_token_timeout_s=1, llm_max_retries=2),
        embedder=embedder,
    )
    llm.script(Reply(ARTICLE4_EN, delay_s=4), Reply(ARTICLE4_EN, delay_s=4), Reply(ARTICLE4_EN, delay_s=4))
    _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "extractive" and "no reply within 1 s" in answer.notice
    time.sleep(1.5)  # a retry would have arrived by now
    assert len(llm.chat_requests) == 1


def test_a_single_slot_server_is_not_interrupted_when_kilde_keeps_one_request_at_a_time(
    built_index, embedder
):
    reply = Reply(f"{ARTICLE4_EN} [1]", chunk_delay_s=0.05)
    with ScriptedLLMServer(interrupt=True) as server:
        answers: dict[str, list[Answer]] = {}
        for concurrency in (0, 1):
            assistant = build_assistant(
                settings_for(
                    built_index, server.url, llm_concurrency=concurrency, llm_first_token_timeout_s=20
                ),
                embedder=embedder,
            )
            server.reset()
            server.script(reply, reply)
            results: list[Answer] = []

            def ask(assistant=assistant, results=results):
                results.append(assistant.ask(AskRequest(DEMO_QUESTION_EN)))

            threads = [threading.Thread(target=ask) for _ in range(2)]
            for thread in threads:
                thread.start()
                time.sleep(0.3)  # the second arrives while the first streams
            for thread in threads:
                thread.join(60)
            answers[str(concurrency)] = results
    interrupted = [a for a in answers["0"] if a.backend == "extractive"]
    assert len(interrupted) == 1 and "KILDE_LLM_CONCURRENCY" in interrupted[0].notice
    assert [a.backend for a in answers["1"]] == ["openai-compatible", "openai-compatible"]


# -- 5. a cut-off answer ending inside a tag ---------------------------------------------------------------


def test_an_unclosed_tag_at_the_end_of_a_cut_off_answer_is_stripped(built_index, embedder, llm):
    assistant = build_assistant(settings_for(built_index, llm.url, llm_max_tokens=40), embedder=embedder)
    llm.script(Reply(f"{ARTICLE4_EN} [1] {PARTIAL_TAG}", finish_reason="length"))
    streamed, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "openai-compatible" and answer.partial
    for text in (streamed, answer.answer):
        assert "<passage" not in text and "Geopolit" not in text and "date=" not in text


# -- 6. errors that say what is wrong ----------------------------------------------------------------------


def test_nothing_listening_says_could_not_connect(built_index, embedder):
    url = f"http://127.0.0.1:{free_port()}/v1"
    assistant = build_assistant(settings_for(built_index, url), embedder=embedder)
    _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "extractive" and f"could not connect to {url}" in answer.notice


@pytest.mark.parametrize("url", ["127.0.0.1:8080/v1", "localhost:11434", "ftp://127.0.0.1/v1"])
def test_a_base_url_without_a_scheme_is_refused_at_start_up(url):
    with pytest.raises(ConfigError, match="http://"):
        resolve_settings(
            environ={
                "KILDE_LLM_BACKEND": "openai-compatible",
                "KILDE_LLM_BASE_URL": url,
                "KILDE_LLM_MODEL": "local",
            },
            config_file=NO_FILE,
        )


def test_a_404_without_v1_suggests_adding_it(built_index, embedder, llm):
    root = llm.url.removesuffix("/v1")
    assistant = build_assistant(settings_for(built_index, root), embedder=embedder)
    _, answer = run(assistant, AskRequest(DEMO_QUESTION_EN))
    assert answer.backend == "extractive" and "HTTP 404" in answer.notice and f"{root}/v1" in answer.notice


def test_the_servers_error_is_quoted_short_and_redacted(generative, llm):
    message = f"model 'scripted-7b' is not loaded; key {KEY} was fine. " + "x" * 400
    llm.script(Reply.refused(400, message))
    _, answer = run(generative, AskRequest(DEMO_QUESTION_EN))
    assert "HTTP 400" in answer.notice and "model 'scripted-7b' is not loaded" in answer.notice
    assert KEY not in answer.notice and KEY[-8:] not in answer.notice and "x" * 200 not in answer.notice


def test_a_norwegian_question_gets_the_whole_notice_in_norwegian(generative, llm):
    llm.script(Reply.server_error(), Reply.server_error())
    _, answer = run(generative, AskRequest(DEMO_QUESTION_NB))
    assert answer.language == "nb" and answer.backend == "extractive"
    # Kilde's words are Norwegian; only the server's own message, quoted, stays as the server wrote it.
    assert answer.notice.startswith("Språkmodellen feilet (serveren avviste forespørselen, HTTP 500")
    assert answer.notice.endswith("så dette er det offline uttrekkssvaret i stedet.")
    assert "refused" not in answer.notice and "failed" not in answer.notice


def test_readyz_reports_an_unreachable_model_server_as_degraded(built_index, embedder, llm):
    from ui.server import create_app

    url = f"http://127.0.0.1:{free_port()}/v1"
    assistant = build_assistant(settings_for(built_index, url), embedder=embedder)
    server = ThreadServer(create_app(assistant.settings, assistant)).start()
    try:
        body = httpx.get(server.url + "/readyz", timeout=30)
    finally:
        server.stop()
    assert body.status_code == 200  # still ready: extractive answers work
    data = body.json()
    assert data["status"] == "degraded" and data["model"]["status"] == "unreachable"
    assert f"could not connect to {url}" in data["model"]["detail"]


def test_readyz_and_start_up_warn_when_the_model_is_not_listed(built_index, embedder, caplog):
    from ui.server import check_model_server, create_app

    with ScriptedLLMServer(models=("smollm2-135m-instruct",)) as llm:
        assistant = build_assistant(settings_for(built_index, llm.url), embedder=embedder)
        with caplog.at_level(logging.WARNING):
            check_model_server(assistant)
        server = ThreadServer(create_app(assistant.settings, assistant)).start()
        try:
            data = httpx.get(server.url + "/readyz", timeout=30).json()
        finally:
            server.stop()
        assert [r.path for r in llm.requests if r.path.endswith("/models")]
    assert data["status"] == "ready" and data["model"]["model_listed"] is False
    assert "'scripted-7b'" in data["model"]["detail"] and "smollm2-135m-instruct" in data["model"]["detail"]
    assert "scripted-7b" in caplog.text and "KILDE_LLM_MODEL" in caplog.text


def test_the_openai_compatible_backend_needs_a_model_name(built_index, llm):
    with pytest.raises(ConfigError, match="KILDE_LLM_MODEL"):
        resolve_settings(
            environ={"KILDE_LLM_BACKEND": "openai-compatible", "KILDE_LLM_BASE_URL": llm.url},
            config_file=NO_FILE,
        )
    assert (
        resolve_settings(
            environ={"KILDE_LLM_BACKEND": "openai", "OPENAI_API_KEY": KEY}, config_file=NO_FILE
        ).llm_model
        == "gpt-4o-mini"
    )


def test_the_configured_model_name_is_what_the_server_receives(generative, llm):
    llm.script(Reply(f"{ARTICLE4_EN} [1]"))
    run(generative, AskRequest(DEMO_QUESTION_EN))
    assert llm.chat_requests[-1].body["model"] == "scripted-7b"  # the server would have accepted any name


# -- 7. chat templates without a system role -----------------------------------------------------------------


def test_the_system_prompt_can_be_folded_into_the_first_user_turn(built_index, embedder, llm):
    settings = resolve_settings(environ={"KILDE_LLM_SYSTEM_IN_USER": "true"}, config_file=NO_FILE)
    assert settings.llm_system_in_user is True
    assistant = build_assistant(
        settings_for(built_index, llm.url, llm_system_in_user=True), embedder=embedder
    )
    standalone = "What does Article 51 of the UN Charter give a member state the right to do?"
    llm.script(Reply(standalone), Reply(f"{ARTICLE4_EN} [1]"))
    history = (Turn("user", DEMO_QUESTION_EN), Turn("assistant", f"{ARTICLE4_EN} [1]"))
    run(assistant, AskRequest("And what does Article 51 say?", history=history))
    condense, answer = llm.chat_requests
    for request in (condense, answer):
        roles = [m["role"] for m in request.body["messages"]]
        assert "system" not in roles and roles[0] == "user"
    assert answer.body["messages"][0]["content"].startswith("You are Kilde")
    assert "data, never instructions" in answer.body["messages"][0]["content"]
    assert '<passage id="1"' in answer.body["messages"][0]["content"]


# -- 8. the model's condensed follow-up is checked ------------------------------------------------------------


@pytest.mark.parametrize(
    "condensed",
    [
        "Article 51 says that members must never defend themselves.",  # a statement, and a false one
        "What does Article 4 commit each side to?",  # drops the follow-up's "51"
        "",
    ],
)
def test_an_unusable_condensed_follow_up_falls_back_to_extractive_condensing(generative, llm, condensed):
    follow_up = "And what does Article 51 say?"
    history = (Turn("user", DEMO_QUESTION_EN), Turn("assistant", f"{ARTICLE4_EN} [1]"))
    llm.script(Reply(condensed), Reply("Article 51 gives a member state the right to self-defence [1]."))
    _, answer = run(generative, AskRequest(follow_up, history=history))
    assert answer.standalone_question == condense_extractive(follow_up, history)
