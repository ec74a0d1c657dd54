"""`KildeRetriever` (in-process) and `KildeHTTPRetriever` (over `POST /api/search` of the real app on a loopback
port), each through LangChain's own standard suite (`langchain-tests`' `RetrieversIntegrationTests`), then the
metadata, the filters and the typed errors, over the small real index."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from assistant.core.errors import (
    BackendError,
    BadInputError,
    ConfigError,
    RateLimitedError,
    RetryLaterError,
    ServerBusyError,
)
from assistant.langchain_retriever import KildeHTTPRetriever, KildeRetriever
from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB, SEED_ID
from assistant.testing.servers import ThreadServer, free_port

# The suite's async test runs on anyio's pytest plugin (asyncio backend); the sync tests are unaffected.
pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(scope="module")
def api(built_index, assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(built_index.replace(rate_limit_per_minute=1000), assistant)).start()
    yield server
    server.stop()


class TestKildeRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _index(self, assistant):
        self.hybrid = assistant.retriever

    @property
    def retriever_constructor(self) -> type[KildeRetriever]:
        return KildeRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"retriever": self.hybrid}

    @property
    def retriever_query_example(self) -> str:
        return DEMO_QUESTION_NB


class TestKildeHTTPRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self, api):
        self.url = api.url

    @property
    def retriever_constructor(self) -> type[KildeHTTPRetriever]:
        return KildeHTTPRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"url": self.url}

    @property
    def retriever_query_example(self) -> str:
        return DEMO_QUESTION_EN


def test_documents_carry_where_each_passage_comes_from(assistant):
    docs = KildeRetriever(retriever=assistant.retriever, k=3).invoke(DEMO_QUESTION_NB)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.metadata["article_id"] == SEED_ID and top.id == top.metadata["chunk_id"]
    assert {
        "article_id",
        "title",
        "date",
        "source",
        "url",
        "language",
        "chunk_id",
        "start",
        "end",
        "score",
    } <= set(top.metadata)
    assert top.metadata["date"] == "2024-11-27" and top.metadata["source"] == "Geopolitika"
    article = assistant.store.get_article(top.metadata["article_id"])
    for doc in docs:
        text = assistant.store.get_article(doc.metadata["article_id"]).text
        assert text[doc.metadata["start"] : doc.metadata["end"]] == doc.page_content
    assert ARTICLE4_OPENING in article.text


def test_http_retriever_returns_what_the_in_process_one_does(api, assistant):
    local = KildeRetriever(retriever=assistant.retriever, k=4).invoke(DEMO_QUESTION_NB)
    remote = KildeHTTPRetriever(url=api.url, k=4).invoke(DEMO_QUESTION_NB)
    assert [d.metadata["chunk_id"] for d in remote] == [d.metadata["chunk_id"] for d in local]
    assert [d.page_content for d in remote] == [d.page_content for d in local]
    assert asyncio.run(KildeHTTPRetriever(url=api.url, k=4).ainvoke(DEMO_QUESTION_NB)) == remote


@pytest.mark.parametrize("kind", ["local", "http"])
def test_date_source_and_language_filters(api, assistant, kind):
    def make(**fields):
        if kind == "local":
            return KildeRetriever(retriever=assistant.retriever, **fields)
        return KildeHTTPRetriever(url=api.url, **fields)

    recent = make(k=10, since="2024-01-01").invoke(DEMO_QUESTION_EN)
    assert recent and {d.metadata["article_id"] for d in recent} == {SEED_ID}
    older = make(k=10, until="2024-11-26").invoke(DEMO_QUESTION_EN)
    assert SEED_ID not in {d.metadata["article_id"] for d in older}
    norquad = make(k=10, sources=["NorQuAD news"]).invoke(DEMO_QUESTION_EN)
    assert len(norquad) == 10 and SEED_ID not in {d.metadata["article_id"] for d in norquad}
    # The index holds Norwegian only: a filter on English is refused, as a source no article has is.
    with pytest.raises(
        BadInputError, match="no article is in the language 'en'; the archive's languages: 'nb'"
    ):
        make(k=10, languages=["en"]).invoke(DEMO_QUESTION_EN)
    # A call's options override the retriever's own.
    assert {d.metadata["article_id"] for d in make(k=2).invoke(DEMO_QUESTION_EN, since="2024-11-27")} == {
        SEED_ID
    }


def test_in_a_chain(assistant):
    from langchain_core.runnables import RunnableLambda

    retriever = KildeRetriever(retriever=assistant.retriever, k=2)
    chain = retriever | RunnableLambda(lambda docs: [d.metadata["title"] for d in docs])
    assert chain.invoke(DEMO_QUESTION_NB)[0] == "Nord-Korea og Russland inngår forsvarspakt"


@pytest.mark.parametrize("kind", ["local", "http"])
def test_bad_input_is_a_typed_error(api, assistant, kind):
    make = (
        (lambda **f: KildeRetriever(retriever=assistant.retriever, **f))
        if kind == "local"
        else (lambda **f: KildeHTTPRetriever(url=api.url, **f))
    )
    retriever = make()
    for query, options, says in [
        ("  ", {}, "empty"),
        ("\u0000", {}, "the query is empty"),  # as /api/ask says of the question
        ("😀", {}, "the query has no words"),
        ("x" * 2001, {}, "limit is 2000"),
        (DEMO_QUESTION_EN, {"k": 0}, "k: must be"),
        (DEMO_QUESTION_EN, {"k": "3"}, "k: must be"),
        (DEMO_QUESTION_EN, {"since": "soon"}, "not a date"),
        (DEMO_QUESTION_EN, {"languages": ["de"]}, "'de'"),
        (DEMO_QUESTION_EN, {"mode": "magic"}, "hybrid, dense or bm25"),
        (DEMO_QUESTION_EN, {"colour": "red"}, "colour"),
    ]:
        with pytest.raises(BadInputError) as caught:
            retriever.invoke(query, **options)
        assert says in str(caught.value), (options, str(caught.value))
    with pytest.raises(ValueError):  # pydantic checks the fields at construction
        make(k=0)


def test_http_retriever_errors_name_the_cause(built_index, assistant, api):
    with pytest.raises(BackendError, match="did not answer"):
        KildeHTTPRetriever(url=f"http://127.0.0.1:{free_port()}", timeout_s=5).invoke(DEMO_QUESTION_EN)
    with pytest.raises(ConfigError, match=r"origin_not_allowed|not allowed"):
        KildeHTTPRetriever(url=api.url, headers={"Origin": "https://evil.example"}).invoke(DEMO_QUESTION_EN)


def test_a_field_the_retrievers_lack_is_refused_not_ignored(api, assistant):
    """`search_kwargs={"k": 1}`, a vector store retriever's idiom, was dropped without a word: five passages came."""
    for make in (
        lambda **kw: KildeHTTPRetriever(url=api.url, **kw),
        lambda **kw: KildeRetriever(retriever=assistant.retriever, **kw),
    ):
        with pytest.raises(
            ValueError, match=r"search_kwargs: not a field of Kilde\w*Retriever; give k=1"
        ) as caught:
            make(search_kwargs={"k": 1, "filter": {"since": "2024-01-01"}})
        assert "since" in str(caught.value) and "mode" in str(caught.value)
        with pytest.raises(ValueError, match="kk: not a field"):
            make(kk=3)


def test_a_server_down_or_slow_is_named_with_what_to_do(api):
    down = f"http://127.0.0.1:{free_port()}"
    for call in (
        lambda r: r.invoke(DEMO_QUESTION_EN),
        lambda r: asyncio.run(r.ainvoke(DEMO_QUESTION_EN)),
    ):
        with pytest.raises(BackendError) as caught:
            call(KildeHTTPRetriever(url=down))
        assert f"Kilde at {down} did not answer" in str(caught.value)
        assert "is `kilde serve` running there" in str(caught.value)
    # A server that takes the connection and never answers: the timeout is named, and the field that sets it.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        for call in (
            lambda r: r.invoke(DEMO_QUESTION_EN),
            lambda r: asyncio.run(r.ainvoke(DEMO_QUESTION_EN)),
        ):
            with pytest.raises(BackendError, match=r"did not answer within 0.5 s \(timeout_s\)"):
                call(KildeHTTPRetriever(url=url, timeout_s=0.5))


@pytest.mark.parametrize("kind", ["local", "http"])
def test_none_is_no_filter_and_a_date_is_its_day(api, assistant, kind):
    import datetime as dt

    retriever = (
        KildeRetriever(retriever=assistant.retriever, k=10)
        if kind == "local"
        else KildeHTTPRetriever(url=api.url, k=10)
    )
    # None raised a TypeError for sources and languages; a date was "not a date".
    every = retriever.invoke(DEMO_QUESTION_EN, sources=None, languages=None, since=None)
    assert every == retriever.invoke(DEMO_QUESTION_EN)
    recent = retriever.invoke(DEMO_QUESTION_EN, since=dt.date(2024, 11, 27))
    assert recent and {d.metadata["article_id"] for d in recent} == {SEED_ID}


def test_http_retriever_url_mistakes_are_config_errors_naming_the_url(api):
    # No scheme was "did not answer: UnsupportedProtocol", a bad port an httpx.InvalidURL traceback, and the
    # OpenAI base URL (…/v1) a BadInputError quoting the 404's body as a Python dict.
    for url, says in [
        (api.url.removeprefix("http://"), "'http://' or 'https://'"),
        ("http://[::1", "Invalid port"),
        (api.url + "/v1", "/v1/api/search (HTTP 404)"),
    ]:
        with pytest.raises(ConfigError, match=r"kilde serve") as caught:
            KildeHTTPRetriever(url=url).invoke(DEMO_QUESTION_EN)
        assert says in str(caught.value)
        with pytest.raises(ConfigError):
            asyncio.run(KildeHTTPRetriever(url=url).ainvoke(DEMO_QUESTION_EN))


def test_search_endpoint_keeps_the_rules_of_api_ask(built_index, assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(built_index.replace(rate_limit_per_minute=2), assistant)).start()
    try:
        bad = httpx.post(server.url + "/api/search", json={"query": DEMO_QUESTION_EN, "k": 0})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
        unknown = httpx.post(server.url + "/api/search", json={"query": DEMO_QUESTION_EN, "colour": "red"})
        assert unknown.status_code == 422
        foreign = httpx.post(
            server.url + "/api/search",
            json={"query": DEMO_QUESTION_EN},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403 and foreign.json()["error"] == "origin_not_allowed"
        assert (
            httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120).status_code
            == 200
        )
        assert KildeHTTPRetriever(url=server.url).invoke(DEMO_QUESTION_EN)
        with pytest.raises(
            RateLimitedError, match=r"HTTP 429: rate limit: too many questions.*; retry in \d+ s"
        ):
            KildeHTTPRetriever(url=server.url).invoke(DEMO_QUESTION_EN)
        limited = httpx.post(server.url + "/api/search", json={"query": DEMO_QUESTION_EN})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    finally:
        server.stop()
    proxied = ThreadServer(
        create_app(built_index.replace(auth_mode="proxy", trusted_proxies=("10.0.0.5",)), assistant)
    ).start()
    try:
        with pytest.raises(ConfigError, match="trusted proxy"):
            KildeHTTPRetriever(url=proxied.url).invoke(DEMO_QUESTION_EN)
    finally:
        proxied.stop()


def test_a_rate_limit_says_when_to_retry(built_index, assistant):
    # It was a BadInputError, as for a bad query, and the server's Retry-After was lost.
    from ui.server import create_app

    server = ThreadServer(create_app(built_index.replace(rate_limit_per_minute=1), assistant)).start()
    try:
        retriever = KildeHTTPRetriever(url=server.url)
        assert retriever.invoke(DEMO_QUESTION_EN)
        for call in (
            lambda: retriever.invoke(DEMO_QUESTION_EN),
            lambda: asyncio.run(retriever.ainvoke(DEMO_QUESTION_EN)),
        ):
            with pytest.raises(RateLimitedError) as caught:
                call()
            waited = caught.value.retry_after
            assert isinstance(waited, int) and 1 <= waited <= 61
            assert f"retry in {waited} s" in str(caught.value)
            assert not isinstance(caught.value, BadInputError) and isinstance(caught.value, RetryLaterError)
    finally:
        server.stop()


def refusing_search(error: Exception):
    """An app whose `/api/search` fails with `error`, answered by `kilde serve`'s own error handlers: the
    response `kilde serve` sends when that error stops a request."""
    from fastapi import FastAPI

    from ui.server import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    app.get("/readyz")(lambda: {"status": "ready"})

    @app.post("/api/search")
    def search():
        raise error

    return app


def test_a_busy_server_says_when_to_retry():
    # A 503 `busy` (no turn within the request budget, ui/fairness.py) was a BackendError without the
    # server's Retry-After, as for a server that is broken.
    from ui.fairness import Busy

    server = ThreadServer(refusing_search(Busy(30))).start()
    try:
        refused = httpx.post(server.url + "/api/search", json={"query": DEMO_QUESTION_EN})
        assert refused.status_code == 503 and refused.json()["error"] == "busy"
        sent = int(refused.headers["retry-after"])
        retriever = KildeHTTPRetriever(url=server.url)
        for call in (
            lambda: retriever.invoke(DEMO_QUESTION_EN),
            lambda: asyncio.run(retriever.ainvoke(DEMO_QUESTION_EN)),
        ):
            with pytest.raises(ServerBusyError) as caught:
                call()
            assert caught.value.retry_after == sent
            assert str(caught.value).endswith(f"; retry in {sent} s")
            assert "HTTP 503: Kilde is busy" in str(caught.value)
            # One except clause waits for either refusal; a caller that caught BackendError still does.
            assert isinstance(caught.value, RetryLaterError) and isinstance(caught.value, BackendError)
    finally:
        server.stop()


def test_a_server_whose_store_is_out_of_reach_says_when_to_retry_not_that_it_is_busy():
    """A Kilde whose Chroma server stopped answers 503 `not_ready` with Retry-After; the retriever called it
    "too busy to search"."""
    from assistant.core.errors import StoreUnreachableError

    server = ThreadServer(refusing_search(StoreUnreachableError("http://127.0.0.1:9", "refused"))).start()
    try:
        with pytest.raises(ServerBusyError) as caught:
            KildeHTTPRetriever(url=server.url).invoke(DEMO_QUESTION_EN)
        assert str(caught.value).startswith("Kilde cannot search now (HTTP 503: The Chroma server at")
        assert "busy" not in str(caught.value) and caught.value.retry_after == 5
    finally:
        server.stop()


def test_a_server_without_an_index_is_not_busy():
    from assistant.core.errors import IndexMissingError

    server = ThreadServer(refusing_search(IndexMissingError("/gone"))).start()
    try:
        with pytest.raises(BackendError, match=r"\(HTTP 503\): No Kilde index found") as caught:
            KildeHTTPRetriever(url=server.url).invoke(DEMO_QUESTION_EN)
        assert not isinstance(caught.value, RetryLaterError)  # waiting builds no index
    finally:
        server.stop()


def test_the_lcel_chain_of_the_docs(api):
    """docs/integrations.md's chain, with the scripted OpenAI-compatible server standing in for the model."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_openai import ChatOpenAI

    from assistant.testing.scripted_llm import Reply, ScriptedLLMServer

    retriever = KildeHTTPRetriever(url=api.url, k=4, since="2024-01-01")

    def numbered(docs):
        return "\n\n".join(
            f"[{i}] {d.metadata['title']} ({d.metadata['date']}): {d.page_content}"
            for i, d in enumerate(docs, 1)
        )

    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer only from the passages; cite them as [n].\n\n{passages}"),
            ("human", "{question}"),
        ]
    )
    with ScriptedLLMServer() as model:
        model.script(Reply("Each side must help the other at once [1]."))
        llm = ChatOpenAI(model="scripted", base_url=model.url, api_key="unused", max_retries=0)
        chain = (
            {"passages": retriever | numbered, "question": RunnablePassthrough()}
            | prompt
            | llm
            | StrOutputParser()
        )
        assert chain.invoke(DEMO_QUESTION_EN) == "Each side must help the other at once [1]."
        system = model.chat_requests[-1].body["messages"][0]["content"]
    assert "[1] Nord-Korea og Russland inngår forsvarspakt (2024-11-27): " in system
    assert ARTICLE4_OPENING in system
