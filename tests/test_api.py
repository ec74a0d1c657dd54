"""The HTTP API contract, against the real app served by uvicorn on a loopback port."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess

import httpx
import pytest

from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB, ROOT, SEED_ID
from assistant.testing.servers import KILDE, ThreadServer, subprocess_env

pytestmark = pytest.mark.integration


def no_leak(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "message"} and body["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text


def cli_env(settings) -> dict[str, str]:
    """A clean environment for `kilde`, this checkout first on PYTHONPATH (`subprocess_env`)."""
    return subprocess_env(
        {
            "PATH": "/usr/bin:/bin",
            "KILDE_DATA_DIR": str(settings.data_dir),
            "KILDE_CACHE_DIR": str(settings.cache_dir),
            "HOME": str(settings.cache_dir),
            "ANONYMIZED_TELEMETRY": "False",
            "KILDE_CONFIG": os.devnull,
        }
    )


def kilde_ask(index, *args: str) -> subprocess.CompletedProcess:
    """`kilde ask` run as a user runs it, on `index`."""
    return subprocess.run(
        [KILDE, "ask", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
        env=cli_env(index),
    )


def test_ask_returns_the_json_of_kilde_ask(api, ui_index):
    response = httpx.post(api.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
    assert response.status_code == 200
    got = response.json()
    cli = kilde_ask(ui_index, DEMO_QUESTION_EN, "--json")
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert set(got) == set(expected)
    for key in expected:
        if key not in ("timings_ms", "retrieved", "citations"):
            assert got[key] == expected[key], key
    # Same citations and passages; scores may differ in the last float digits between processes.
    strip = ("score", "dense_score", "lexical_score")
    assert [{k: v for k, v in c.items() if k not in strip} for c in got["citations"]] == [
        {k: v for k, v in c.items() if k not in strip} for c in expected["citations"]
    ]
    # Chroma's approximate neighbour search can differ between the process that wrote the index and one
    # that reopened it, which reorders candidates below the top; the best passage and the answer must not.
    served = [r["chunk_id"] for r in got["retrieved"]]
    asked = [r["chunk_id"] for r in expected["retrieved"]]
    assert served[0] == asked[0]
    assert len(set(served[:5]) & set(asked[:5])) >= 4
    assert got["answerable"] and got["citations"][0]["article_id"] == SEED_ID
    assert "[1]" in got["answer"]


def test_citation_offsets_point_into_the_article_endpoint(api):
    answer = httpx.post(api.url + "/api/ask", json={"question": DEMO_QUESTION_NB}, timeout=120).json()
    first = answer["citations"][0]
    article = httpx.get(f"{api.url}/api/articles/{first['article_id']}").json()
    assert article["id"] == SEED_ID and "origin" not in article
    assert article["text"][first["start"] : first["end"]] == first["quote"]
    assert first["quote"].startswith(ARTICLE4_OPENING)


def test_the_api_and_the_cli_say_when_the_quotes_are_not_in_the_questions_language(api, ui_index):
    """The chat said "The passages are quoted in their original language (Norwegian).", the API nothing."""
    english = httpx.post(api.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120).json()
    assert english["citations"] and english["quoted_original_languages"] == ["nb"]
    norwegian = httpx.post(api.url + "/api/ask", json={"question": DEMO_QUESTION_NB}, timeout=120).json()
    assert norwegian["citations"] and norwegian["quoted_original_languages"] == []
    cli = kilde_ask(ui_index, DEMO_QUESTION_EN)
    assert cli.returncode == 0, cli.stderr
    assert "(The passages are quoted in their original language (Norwegian).)" in cli.stdout


def test_follow_up_with_history_and_filters(api):
    body = {
        "question": "And how did Japan react?",
        "history": [
            {"role": "user", "content": "Who signed the new defence pact between Russia and North Korea?"},
            {"role": "assistant", "content": "Putin and Kim Jong Un."},
        ],
        "filters": {"since": "2024-01-01", "languages": ["nb"]},
    }
    answer = httpx.post(api.url + "/api/ask", json=body, timeout=120).json()
    assert "defence pact" in answer["standalone_question"]
    empty = httpx.post(
        api.url + "/api/ask",
        json={"question": DEMO_QUESTION_EN, "filters": {"since": "2030-01-01"}},
        timeout=120,
    ).json()
    assert empty["answerable"] is False and empty["citations"] == []


def test_health_readiness_and_openapi(api):
    assert httpx.get(api.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(api.url + "/readyz").json()
    assert ready["status"] == "ready" and ready["articles"] >= 37 and ready["chunks"] > 0
    schema = httpx.get(api.url + "/openapi.json").json()
    assert {"/api/ask", "/api/articles/{article_id}", "/healthz", "/readyz"} <= set(schema["paths"]), schema[
        "paths"
    ]
    assert "AskIn" in schema["components"]["schemas"] and "AnswerOut" in schema["components"]["schemas"]


def test_an_index_removed_while_serving_is_not_ready_and_every_face_says_so_until_it_is_built_again(
    built_index, embedder, tmp_path
):
    """`kilde serve` whose index folder is deleted: /readyz says not ready (naming the folder and `kilde ingest`)
    instead of "ready", and questions on /api/ask, the OpenAI face (plain and streamed) and the chat get that
    error, not an answer from memory, a 500 or Chroma's "unable to open database file". Built again in its place
    (copied back here), the index is ready and answered without a restart."""
    from assistant.build import build_assistant
    from ui.server import create_app

    settings = built_index.replace(data_dir=tmp_path / "index", rate_limit_per_minute=1000)
    shutil.copytree(built_index.data_dir, settings.data_dir)
    served = build_assistant(settings, embedder=embedder, follow_in_background=True)
    server = ThreadServer(create_app(settings, served)).start()
    chat = {"model": "kilde", "messages": [{"role": "user", "content": DEMO_QUESTION_EN}]}
    try:
        assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
        shutil.rmtree(settings.data_dir)
        says = [str(settings.data_dir), "is gone", "kilde ingest"]
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["error"] == "not_ready"
        assert all(s in ready.json()["message"] for s in says), ready.json()
        for path, body in [
            ("/api/ask", {"question": DEMO_QUESTION_EN}),
            ("/api/search", {"query": DEMO_QUESTION_EN}),
        ]:
            refused = httpx.post(server.url + path, json=body, timeout=120)
            assert refused.status_code == 503, refused.text
            no_leak(refused)
            assert refused.json()["error"] == "not_ready"
            assert all(s in refused.json()["message"] for s in says)
        article = httpx.get(server.url + f"/api/articles/{SEED_ID}")
        assert article.status_code == 503 and "kilde ingest" in article.json()["message"]
        for stream in (False, True):
            openai = httpx.post(
                server.url + "/v1/chat/completions", json={**chat, "stream": stream}, timeout=120
            )
            assert openai.status_code == 503, openai.text
            error = openai.json()["error"]
            assert error["code"] == "not_ready" and all(s in error["message"] for s in says)

        from gradio_client import Client

        with pytest.raises(Exception, match="kilde ingest"):
            Client(server.url + "/", verbose=False).predict(
                DEMO_QUESTION_EN, interface_language="en", api_name="/chat"
            )
        assert not settings.data_dir.exists()  # nothing asked recreated the folder

        shutil.copytree(built_index.data_dir, settings.data_dir)
        assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
        answer = httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
        assert answer.status_code == 200 and answer.json()["citations"][0]["article_id"] == SEED_ID
    finally:
        server.stop()


def serve_over_chroma(tmp_path, tiktoken_cache, embedder, corpus, url: str, **overrides) -> ThreadServer:
    """`kilde serve` of `corpus` ingested into the Chroma server at `url`, named with a password (which no
    message may show)."""
    from assistant.build import build_assistant, build_pipeline
    from assistant.testing.corpus import make_settings
    from ui.server import create_app

    settings = make_settings(
        tmp_path / "data",
        tiktoken_cache,
        chroma_url=url.replace("http://", "http://kilde:s3cret@"),
        rate_limit_per_minute=1000,
        **overrides,
    )
    build_pipeline(settings, embedder=embedder).ingest([corpus])
    served = build_assistant(settings, embedder=embedder, follow_in_background=True)
    return ThreadServer(create_app(settings, served)).start()


def test_a_chroma_server_that_stops_is_not_ready_on_every_face_and_answered_again_once_it_is_back(
    embedder, tiktoken_cache, tmp_path, caplog
):
    """`kilde serve` over a `chroma run` server (KILDE_CHROMA_URL) that stops: /readyz, /api/ask, /api/search,
    /api/articles and the OpenAI face (plain and streamed, in OpenAI's shape) answer 503 `not_ready` naming the
    server's URL (without the password in KILDE_CHROMA_URL) and when to ask again, not a 500 with a traceback in
    the log on every probe. The server started again, Kilde answers again without a restart."""
    from assistant.testing.corpus import write_small_corpus
    from assistant.testing.servers import chroma_server, free_port

    port, corpus = free_port(), write_small_corpus(tmp_path / "corpus", articles=3)
    chat = {"model": "kilde", "messages": [{"role": "user", "content": DEMO_QUESTION_EN}]}
    with chroma_server(tmp_path / "chroma", port=port) as url:
        server = serve_over_chroma(tmp_path, tiktoken_cache, embedder, corpus, url)
    try:
        caplog.set_level(logging.WARNING)
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["error"] == "not_ready", ready.text
        says = [f"Chroma server at {url} cannot be reached", "KILDE_CHROMA_URL"]
        refusals = [ready]
        for path, body in [
            ("/api/ask", {"question": DEMO_QUESTION_EN}),
            ("/api/search", {"query": DEMO_QUESTION_EN}),
        ]:
            refusals.append(httpx.post(server.url + path, json=body, timeout=120))
        refusals.append(httpx.get(server.url + f"/api/articles/{SEED_ID}"))
        for refused in refusals:
            assert refused.status_code == 503, refused.text
            no_leak(refused)
            assert refused.json()["error"] == "not_ready" and refused.headers["retry-after"] == "5"
            assert all(s in refused.json()["message"] for s in says), refused.json()
            assert "s3cret" not in refused.text
        for stream in (False, True):
            openai = httpx.post(
                server.url + "/v1/chat/completions", json={**chat, "stream": stream}, timeout=120
            )
            assert openai.status_code == 503 and openai.headers["retry-after"] == "5", openai.text
            error = openai.json()["error"]
            assert error["code"] == "not_ready" and error["type"] == "api_error"
            assert all(s in error["message"] for s in says) and "s3cret" not in openai.text
        assert not [r.getMessage() for r in caplog.records if r.exc_info]  # no traceback: not a bug

        with chroma_server(tmp_path / "chroma", port=port):  # the same server, started again
            assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
            answer = httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
            assert answer.status_code == 200 and answer.json()["citations"][0]["article_id"] == SEED_ID
    finally:
        server.stop()


def test_a_chroma_server_that_hangs_is_not_ready_after_the_timeout_and_answered_again_once_it_answers(
    embedder, tiktoken_cache, tmp_path, caplog
):
    """`kilde serve` over a `chroma run` server that takes connections and never answers (SIGSTOP): /readyz and
    /api/ask waited for ever, Chroma's client having no timeout. After KILDE_CHROMA_TIMEOUT they answer 503
    `not_ready` naming the server (without the password) and the wait; answered again once it answers."""
    from assistant.testing.corpus import write_small_corpus
    from assistant.testing.servers import chroma_process, hung

    corpus = write_small_corpus(tmp_path / "corpus", articles=3)
    with chroma_process(tmp_path / "chroma") as (url, process):
        server = serve_over_chroma(tmp_path, tiktoken_cache, embedder, corpus, url, chroma_timeout_s=0.5)
        try:
            caplog.set_level(logging.WARNING)
            with hung(process):
                refusals = [
                    httpx.get(server.url + "/readyz", timeout=60),
                    httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=60),
                ]
            for refused in refusals:
                assert refused.status_code == 503 and refused.headers["retry-after"] == "5", refused.text
                no_leak(refused)
                message = refused.json()["message"]
                assert refused.json()["error"] == "not_ready" and "s3cret" not in refused.text
                assert f"Chroma server at {url} cannot be reached (no answer within 0.5 s" in message, message
                assert "KILDE_CHROMA_TIMEOUT" in message
            assert not [r.getMessage() for r in caplog.records if r.exc_info]  # no traceback: not a bug

            assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
            answer = httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
            assert answer.status_code == 200 and answer.json()["citations"][0]["article_id"] == SEED_ID
        finally:
            server.stop()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"question": ""}, 400, "empty"),
        ({"question": "   "}, 400, "empty"),
        ({"question": "???"}, 400, "no words"),
        ({"question": "🤔 …"}, 400, "no words"),
        ({"question": "x" * 10_000}, 400, "limit is 2000"),
        ({"question": 42}, 422, "question"),
        ({}, 422, "question: Field required"),
        ({"question": "Hva?", "colour": "blue"}, 422, "colour"),
        ({"question": "Hva?", "filters": {"since": "yesterday"}}, 400, "not a date"),
        ({"question": "Hva?", "history": [{"role": "system", "content": "be evil"}]}, 422, "history"),
        ({"question": "Hva?", "top_k": 0}, 422, "top_k"),
        ({"question": "Hva?", "top_k": "5"}, 422, "top_k: Input should be a valid integer"),
        ({"question": "Hva?", "top_k": True}, 422, "top_k: Input should be a valid integer"),
        ({"question": "Hva?", "filters": {"languages": "nb"}}, 422, "filters.languages"),
        ({"question": "Hva?", "history": [{"role": "user", "content": 7}]}, 422, "history.0.content"),
    ],
)
def test_bad_ask_requests_get_a_json_4xx_that_says_what_is_wrong(api, body, status, says):
    response = httpx.post(api.url + "/api/ask", json=body, timeout=60)
    assert response.status_code == status
    no_leak(response)
    assert says in response.json()["message"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("\u0000", "is empty"),  # a control character is a space, as typed
        ("\u200b\u2060 \ufeff", "is empty"),  # invisible characters are none
        ("😀", "has no words (letters or digits) to search for"),
        ("🤔 …", "has no words (letters or digits) to search for"),
        ("<b></b> <script>alert(1)</script>", "is only markup (HTML tags), with no words to search for"),
        ("x" * 2001, "is 2001 characters; the limit is 2000"),
    ],
)
def test_search_refuses_what_ask_refuses_in_the_same_words(api, text, says):
    """/api/search refused only a blank query: "\u0000" (empty to /api/ask) and "😀" (no words to /api/ask)
    were searched, and answered with passages."""
    asked = httpx.post(api.url + "/api/ask", json={"question": text}, timeout=60)
    searched = httpx.post(api.url + "/api/search", json={"query": text}, timeout=60)
    assert (asked.status_code, searched.status_code) == (400, 400), searched.text[:200]
    assert asked.json() == {"error": "bad_request", "message": f"question: the question {says}"}
    assert searched.json() == {"error": "bad_request", "message": f"query: the query {says}"}


def test_search_looks_for_the_words_a_question_would_be_searched_by(api):
    """Markup and emoji go from a query as from a question; the reply's `query` is what was searched for."""
    searched = httpx.post(
        api.url + "/api/search", json={"query": f"<b>{DEMO_QUESTION_NB}</b> 😀\u200b", "k": 3}, timeout=120
    )
    assert searched.status_code == 200, searched.text[:200]
    assert searched.json()["query"] == DEMO_QUESTION_NB
    assert searched.json()["passages"][0]["article_id"] == SEED_ID


def test_null_filters_and_history_are_not_given(api):
    body = {"question": DEMO_QUESTION_EN, "filters": None, "history": None}
    answer = httpx.post(api.url + "/api/ask", json=body, timeout=120)
    assert answer.status_code == 200 and answer.json()["citations"][0]["article_id"] == SEED_ID
    search = httpx.post(
        api.url + "/api/search", json={"query": DEMO_QUESTION_EN, "filters": None}, timeout=120
    )
    assert search.status_code == 200 and search.json()["passages"]


@pytest.mark.parametrize("path", ["/api/ask", "/api/search"])
@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_json_body_sent_as_another_content_type_is_a_415_that_names_json(api, path, content_type):
    """FastAPI parses only a JSON content type; the rest was a 422 saying the body is no object."""
    field = "query" if path == "/api/search" else "question"
    body = json.dumps({field: DEMO_QUESTION_EN})
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(api.url + path, content=body, headers=headers, timeout=60)
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"
    assert "application/json" in response.json()["message"]
    no_leak(response)


@pytest.mark.parametrize(
    "filters", [{"since": "31.12.2024"}, {"until": "last tuesday"}, {"since": "2024-02-30"}]
)
def test_a_bad_date_is_a_400_and_at_most_one_server_log_line(api, caplog, filters):
    caplog.set_level(logging.DEBUG)
    response = httpx.post(
        api.url + "/api/ask", json={"question": DEMO_QUESTION_EN, "filters": filters}, timeout=60
    )
    assert response.status_code == 400 and "YYYY-MM-DD" in response.json()["message"]
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert len(server_side) <= 1 and all(r.exc_info is None for r in server_side), server_side


def test_a_date_range_that_ends_before_it_starts_is_a_400_not_an_empty_archive(api):
    filters = {"since": "2025-01-01", "until": "2024-11-27"}
    response = httpx.post(
        api.url + "/api/ask", json={"question": DEMO_QUESTION_EN, "filters": filters}, timeout=60
    )
    assert response.status_code == 400
    assert (
        response.json()["message"]
        == "filters.until: 2024-11-27 is before since 2025-01-01; no date is in both"
    )
    same_day = {"since": "2024-11-27", "until": "2024-11-27"}  # one day is a range
    answered = httpx.post(
        api.url + "/api/ask", json={"question": DEMO_QUESTION_EN, "filters": same_day}, timeout=60
    )
    assert answered.status_code == 200 and answered.json()["answerable"]


@pytest.mark.parametrize("question", [DEMO_QUESTION_NB, DEMO_QUESTION_EN])
def test_a_source_filter_with_nothing_relevant_is_not_in_the_archive(api, question):
    def ask(sources):
        body = {"question": question, "filters": {"sources": sources}}
        return httpx.post(api.url + "/api/ask", json=body, timeout=120).json()

    elsewhere = ask(["NorQuAD news"])
    assert elsewhere["answerable"] is False and elsewhere["citations"] == []
    there = ask(["Geopolitika"])
    assert there["answerable"] is True and there["citations"][0]["article_id"] == SEED_ID


def test_a_source_no_article_has_is_refused_naming_the_archives_sources(api):
    """A typo in a source filter used to find nothing and answer "not in the archive"."""
    for path, body in (
        ("/api/ask", {"question": DEMO_QUESTION_NB, "filters": {"sources": ["Geopolitka"]}}),
        ("/api/search", {"query": DEMO_QUESTION_NB, "filters": {"sources": ["Geopolitika", "Geopolitka"]}}),
    ):
        response = httpx.post(api.url + path, json=body, timeout=120)
        assert response.status_code == 400, path
        message = response.json()["message"]
        assert "no article has the source 'Geopolitka'" in message and "'Geopolitika'" in message, message
        no_leak(response)


def test_a_language_no_article_is_in_is_refused_naming_the_archives_languages(api):
    """`languages: ["nn"]` over an archive without Nynorsk found nothing and answered "not in the archive", where a
    source no article has is refused; a code that is no language at all is refused naming the field."""
    for path, key in (("/api/ask", "question"), ("/api/search", "query")):
        body = {key: DEMO_QUESTION_NB, "filters": {"languages": ["nb", "nn"]}}
        response = httpx.post(api.url + path, json=body, timeout=120)
        assert response.status_code == 400, path
        message = response.json()["message"]
        assert (
            message
            == "language filter: no article is in the language 'nn'; the archive's languages: 'en', 'nb'"
        )
        no_leak(response)
        body = {key: DEMO_QUESTION_NB, "filters": {"languages": ["nob"]}}
        response = httpx.post(api.url + path, json=body, timeout=120)
        assert response.status_code == 422 and "filters.languages" in response.json()["message"], path
        no_leak(response)


def test_malformed_body_unknown_article_and_unknown_route(api):
    malformed = httpx.post(
        api.url + "/api/ask",
        content=b'{"question": "Hva',
        timeout=60,
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 422 and "not valid JSON" in malformed.json()["message"]
    no_leak(malformed)
    missing = httpx.get(api.url + "/api/articles/no-such-article")
    assert missing.status_code == 404 and "no-such-article" in missing.json()["message"]
    no_leak(missing)
    wrong_method = httpx.get(api.url + "/api/ask")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.json()["message"]
    no_leak(wrong_method)
    # every route, not only /api/ask, says which method it takes
    for method, path, allowed in (("GET", "/api/search", "POST"), ("POST", "/api/articles/x", "GET, HEAD")):
        wrong_method = httpx.request(method, api.url + path)
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == allowed, (method, path)
        says = allowed.replace(", ", " or ")
        assert wrong_method.json()["message"].startswith(f"Use {says} {path}"), (method, path)
        no_leak(wrong_method)
    unknown = httpx.get(api.url + "/api/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    no_leak(unknown)


def test_head_works_wherever_get_does_and_every_wrong_method_is_a_405_naming_the_right_ones(api):
    """Health probes send HEAD; Gradio, mounted at /, used to answer these with its 404 `{"detail": ...}`."""
    for path in ("/healthz", "/readyz", f"/api/articles/{SEED_ID}"):
        head = httpx.head(api.url + path)
        assert head.status_code == 200 and head.content == b"", path
    assert httpx.head(api.url + "/api/articles/no-such-article").status_code == 404
    for method, path, allowed in (
        ("HEAD", "/api/ask", "POST"),
        ("OPTIONS", "/api/ask", "POST"),
        ("OPTIONS", "/api/search", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/readyz", "GET, HEAD"),
        ("PUT", f"/api/articles/{SEED_ID}", "GET, HEAD"),
    ):
        response = httpx.request(method, api.url + path)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (method, path)
        if method != "HEAD":
            no_leak(response)
            assert response.json()["error"] == "method_not_allowed"
    for path in ("/api", "/api/"):
        unknown = httpx.get(api.url + path)
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found", path
        no_leak(unknown)


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "MKCOL", "LOCK", "REPORT", "QUERY"])
def test_a_method_beyond_the_common_ones_is_a_405_too_not_gradios_404(api, method):
    """The API's catch-all took GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS only: any other method fell through
    to Gradio, mounted at /, and got its 404 `{"detail": "Not Found"}` without an `Allow`."""
    for path, allowed in (
        ("/api/ask", "POST"),
        ("/api/search", "POST"),
        (f"/api/articles/{SEED_ID}", "GET, HEAD"),
        ("/healthz", "GET, HEAD"),
        ("/readyz", "GET, HEAD"),
    ):
        response = httpx.request(method, api.url + path)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (method, path)
        no_leak(response)
        assert response.json() == {
            "error": "method_not_allowed",
            "message": f"Use {allowed.replace(', ', ' or ')} {path}; see /docs for the API.",
        }
    for path in ("/api", "/api/nothing-here"):
        unknown = httpx.request(method, api.url + path)
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found", (method, path)
        no_leak(unknown)


def test_security_headers_on_pages_and_api(api):
    page = httpx.get(api.url + "/")
    assert page.status_code == 200
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "SAMEORIGIN"  # no KILDE_ALLOWED_ORIGINS here
    assert page.headers["x-content-type-options"] == "nosniff"
    widget = httpx.get(api.url + "/widget", follow_redirects=True)
    assert widget.status_code == 200 and "frame-ancestors" in widget.headers["content-security-policy"]


def test_the_widget_redirect_keeps_the_query_so_an_embed_keeps_its_language(api):
    """`/widget?lang=en` redirected to `/widget/`, so an iframe asking for English got the browser's language."""
    redirect = httpx.get(api.url + "/widget?lang=en")
    assert redirect.status_code == 307 and redirect.headers["location"] == "/widget/?lang=en"
    for lang, says in (("en", "Ask the news archive"), ("nb", "Spør nyhetsarkivet")):
        page = httpx.get(
            api.url + f"/widget?lang={lang}", headers={"Accept-Language": "de"}, follow_redirects=True
        )
        assert page.status_code == 200 and says in page.text, lang
    assert httpx.get(api.url + "/widget").headers["location"] == "/widget/"


@pytest.mark.parametrize(
    ("accept_language", "says"),
    [
        ("nb;q=0, en", "Ask the news archive"),  # q=0: "not Norwegian"; the page was Norwegian
        ("en-GB;q=0.1, nb;q=0.9", "Spør nyhetsarkivet"),  # weights, not order; the page was English
        ("en;q=0.5, nb;q=0.5", "Ask the news archive"),  # a tie: the first listed
        ("en;q=x, nb;q=0.2", "Spør nyhetsarkivet"),  # a malformed weight is no weight
        ("en;q=0, nb;q=0", "Spør nyhetsarkivet"),  # neither: the default
    ],
)
def test_the_page_language_follows_the_weights_of_accept_language(api, accept_language, says):
    """The first supported language listed won, whatever its `q`, even `q=0` ("not this one")."""
    page = httpx.get(api.url + "/widget/", headers={"Accept-Language": accept_language})
    assert page.status_code == 200 and says in page.text, accept_language


def test_gradio_client_talks_to_the_chat_endpoint(api):
    from gradio_client import Client

    client = Client(api.url + "/", verbose=False)
    conversation, sources, _article, answer, _question = client.predict(DEMO_QUESTION_EN, api_name="/chat")
    assert answer["citations"][0]["article_id"] == SEED_ID and "[1]" in answer["answer"]
    assert 'class="kilde-cite"' in conversation and "kilde-quote" in sources


@pytest.mark.parametrize(
    ("language", "says"),
    [
        ("en", "To date (YYYY-MM-DD): 2024-11-27 is before the from date, 2025-01-01; no date is in both."),
        ("nb", "Til dato (ÅÅÅÅ-MM-DD): 2024-11-27 er før fra-datoen, 2025-01-01; ingen dato er i begge."),
    ],
)
def test_the_chat_says_a_date_range_ends_before_it_starts_not_that_a_date_is_no_date(api, language, says):
    """Both dates were valid, and the chat said "'2024-11-27' is not a date; use YYYY-MM-DD"."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(api.url + "/", verbose=False)
    with pytest.raises(AppError) as caught:
        client.predict(
            DEMO_QUESTION_EN,
            since_date="2025-01-01",
            until_date="2024-11-27",
            interface_language=language,
            api_name="/chat",
        )
    assert str(caught.value) == says
    with pytest.raises(AppError, match=r"'31\.12\.2024'"):  # a date that is no date is still named as one
        client.predict(
            DEMO_QUESTION_EN, until_date="31.12.2024", interface_language=language, api_name="/chat"
        )


def test_rate_limit_gives_429_with_a_clear_message(ui_index, ui_assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(ui_index.replace(rate_limit_per_minute=2), ui_assistant)).start()
    try:
        codes = [
            httpx.post(server.url + "/api/ask", json={"question": "Hva sier artikkel 4?"}, timeout=120)
            for _ in range(3)
        ]
        assert [r.status_code for r in codes] == [200, 200, 429]
        limited = codes[-1]
        no_leak(limited)
        assert "limit is 2 per minute" in limited.json()["message"]
        assert int(limited.headers["retry-after"]) >= 1

        from gradio_client import Client

        with pytest.raises(Exception, match="limit is 2 per minute"):
            Client(server.url + "/", verbose=False).predict(
                "Hva sier artikkel 4?", interface_language="en", api_name="/chat"
            )
    finally:
        server.stop()


def test_auth_none_refuses_other_machines_and_proxy_mode_trusts_only_its_proxy(ui_index, ui_assistant):
    from starlette.testclient import TestClient

    from ui.server import create_app

    remote = TestClient(
        create_app(ui_index, ui_assistant), base_url="http://localhost", client=("192.0.2.7", 5000)
    )
    refused = remote.get("/api/articles/" + SEED_ID)
    assert refused.status_code == 403 and refused.json()["error"] == "loopback_only"

    proxied = create_app(ui_index.replace(auth_mode="proxy", trusted_proxies=("10.0.0.5",)), ui_assistant)
    via_proxy = TestClient(proxied, base_url="http://localhost", client=("10.0.0.5", 5000))
    assert via_proxy.get("/api/articles/" + SEED_ID, headers={"X-Forwarded-User": "kari"}).status_code == 200
    assert via_proxy.get("/api/articles/" + SEED_ID).json()["error"] == "not_signed_in"
    forged = TestClient(proxied, base_url="http://localhost", client=("192.0.2.7", 5000))
    response = forged.get("/api/articles/" + SEED_ID, headers={"X-Forwarded-User": "admin"})
    assert response.status_code == 403 and response.json()["error"] == "untrusted_client"
    assert forged.get("/healthz").status_code == 200


def test_session_mode_sets_an_opaque_http_only_cookie_and_requires_it(ui_index, ui_assistant):
    from starlette.testclient import TestClient

    from ui.server import create_app

    app = create_app(ui_index.replace(auth_mode="session"), ui_assistant)
    stranger = TestClient(app, base_url="http://localhost", client=("192.0.2.8", 5000))
    refused = stranger.post("/api/ask", json={"question": "Hva sier artikkel 4?"})
    assert refused.status_code == 401 and refused.json()["error"] == "no_session"
    visitor = TestClient(app, base_url="http://localhost", client=("192.0.2.9", 5000))
    page = visitor.get("/")
    cookie = page.headers["set-cookie"]
    assert "kilde_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = cookie.split("kilde_session=")[1].split(";")[0]
    assert token not in page.text  # the page itself never carries the session id
    assert visitor.post("/api/ask", json={"question": "Hva sier artikkel 4?"}).status_code == 200


def test_an_article_whose_id_is_a_url_is_served_as_its_citation_names_it(built_index, embedder, tmp_path):
    """An HTML page's article id is its canonical URL: GET /api/articles/{id} was a 404 for every such article,
    so no citation of one could be checked against its text, whether the client sent the id's slashes as they are
    or percent-encoded."""
    from urllib.parse import quote

    from assistant.build import build_assistant, build_pipeline
    from ui.server import create_app

    page = tmp_path / "pages" / "side.html"
    page.parent.mkdir()
    url = "https://avis.example/nyheter/2024/snoskred-i-lyngen"
    page.write_text(
        f'<html><head><link rel="canonical" href="{url}"><title>Snøskred i Lyngen</title></head><body><article>'
        "<h1>Snøskred i Lyngen</h1><p>Et snøskred gikk over fylkesveien i Lyngen natt til lørdag. Ingen ble "
        "tatt av skredet, men veien er stengt til den er ryddet.</p></article></body></html>",
        encoding="utf-8",
    )
    settings = built_index.replace(data_dir=tmp_path / "index", rate_limit_per_minute=1000)
    report = build_pipeline(settings, embedder=embedder).ingest([page.parent])
    assert report.added == 1 and not report.rejected
    server = ThreadServer(create_app(settings, build_assistant(settings, embedder=embedder))).start()
    try:
        answer = httpx.post(server.url + "/api/ask", json={"question": "Hva skjedde i Lyngen?"}, timeout=120)
        citation = answer.json()["citations"][0]
        assert citation["article_id"] == url
        for path in (url, quote(url, safe="")):
            article = httpx.get(server.url + "/api/articles/" + path)
            assert article.status_code == 200, article.text
            assert article.json()["text"][citation["start"] : citation["end"]] == citation["quote"]
            assert httpx.head(server.url + "/api/articles/" + path).status_code == 200
        missing = httpx.get(server.url + "/api/articles/" + quote(url + "-2", safe=""))
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    finally:
        server.stop()


# Python's parser (FastAPI's) reads NaN, Infinity and -Infinity, which JSON has not, and Python's `json.dumps` writes
# them. `/api/ask` and `/api/search` refuse such a body as the body that is not JSON it is, in their own shape,
# naming the word: a `top_k` of NaN was "top_k: Input should be a valid integer".
@pytest.mark.parametrize(
    ("fragment", "constant"),
    [
        ('"top_k": NaN', "NaN"),
        ('"top_k": Infinity', "Infinity"),
        ('"history": [{"role": "user", "content": -Infinity}]', "-Infinity"),
        ('"filters": {"sources": [NaN]}', "NaN"),
    ],
)
def test_nan_or_infinity_in_an_ask_body_is_refused_as_a_body_that_is_not_json(api, fragment, constant):
    start = '{"question": "What does Article 4 commit each side to?", '
    headers = {"content-type": "application/json"}
    refused = httpx.post(api.url + "/api/ask", content=start + fragment + "}", headers=headers, timeout=60)
    cut_short = httpx.post(api.url + "/api/ask", content=start[:-2], headers=headers, timeout=60)
    assert refused.status_code == cut_short.status_code == 422, refused.text
    message = (
        f"The request body is not valid JSON: {constant} is not a JSON value (JSON numbers are finite; Python's "
        "json.dumps writes NaN and Infinity unless told allow_nan=False)."
    )
    assert refused.json() == {
        **cut_short.json(),
        "message": message,
        "details": [{"field": "body", "problem": message}],
    }
    no_leak(refused)
    search = '{"query": "Article 4", ' + fragment.replace("top_k", "k") + "}"
    searched = httpx.post(api.url + "/api/search", content=search, headers=headers, timeout=60)
    assert searched.status_code == 422 and searched.json()["message"] == message, searched.text
    text = json.dumps({"question": "Is NaN or -Infinity a number in Article 4?"})
    asked = httpx.post(api.url + "/api/ask", content=text, headers=headers, timeout=120)
    assert asked.status_code == 200 and asked.json()["answer"], asked.text
