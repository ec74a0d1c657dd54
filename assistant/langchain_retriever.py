"""Kilde's hybrid retrieval as LangChain retrievers: `KildeRetriever` in-process, `KildeHTTPRetriever` over
`POST /api/search` of a running `kilde serve`.

Both return one `Document` per passage: the chunk's text, with metadata naming where it comes from
(article id, title, date, source, url, language, chunk id, and the `start`/`end` offsets of the passage
in the article text that `kilde show ID` and `GET /api/articles/{id}` return).

    retriever = KildeRetriever.from_settings(resolve_settings(), k=4, since="2024-01-01")
    retriever = KildeHTTPRetriever(url="http://127.0.0.1:7860", k=4, sources=["Geopolitika"])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from assistant.core.errors import (
    BackendError,
    BadInputError,
    ConfigError,
    KildeError,
    RateLimitedError,
    ServerBusyError,
)
from assistant.core.questions import checked_question
from assistant.core.types import Filters, Hit
from assistant.indexes.http_clients import async_http_client, http_client

MAX_K = 50
Mode = Literal["hybrid", "dense", "bm25"]


def passage_of(hit: Hit) -> dict[str, Any]:
    """One retrieved passage as JSON: the shape of `/api/search`, the MCP tool and the Documents' metadata."""
    return {
        "chunk_id": hit.chunk.id,
        "article_id": hit.chunk.article_id,
        "title": hit.article.title,
        "date": hit.article.date,
        "source": hit.article.source,
        "url": hit.article.url,
        "language": hit.article.language,
        "start": hit.chunk.start,
        "end": hit.chunk.end,
        "score": round(hit.score, 6),
        "dense_score": hit.dense_score,
        "lexical_score": hit.lexical_score,
        "text": hit.chunk.text,
    }


def document_of(passage: dict[str, Any]) -> Document:
    metadata = {key: value for key, value in passage.items() if key != "text"}
    return Document(page_content=passage["text"], metadata=metadata, id=passage["chunk_id"])


def make_filters(
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    sources: Sequence[str] | None = (),
    languages: Sequence[str] | None = (),
) -> Filters:
    """Filters from loosely typed input (a form, a tool call); a bad value is a `BadInputError` naming it.
    None is no filter, as for the dates; a `date` is its day."""
    since, until = (day.isoformat()[:10] if isinstance(day, dt.date) else day for day in (since, until))
    for name, value in (("since", since), ("until", until)):
        if value is not None and not isinstance(value, str):
            raise BadInputError(name, f"{value!r} is not a date; use YYYY-MM-DD")
    sources, languages = sources or (), languages or ()
    if isinstance(sources, str):
        sources = [sources]
    if isinstance(languages, str):
        languages = [languages]
    return Filters.parse(since, until, [str(s) for s in sources], languages)


def check_query(query: Any, k: Any) -> tuple[str, int]:
    """The query as it is searched for, checked as a question to /api/ask is (`checked_question`: a query that
    is empty once invisible characters go, of markup or emoji alone, or too long is refused), and `k`."""
    if not isinstance(query, str):
        raise BadInputError("query", "the query is empty")
    query = checked_question(query, field="query", noun="query")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise BadInputError("k", f"must be a whole number from 1 to {MAX_K}, got {k!r:.80}")
    return query, k


class _FilterFields(BaseRetriever):
    """The fields both retrievers share; `invoke(query, k=…, since=…)` overrides any of them for one call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    k: int = Field(5, ge=1, le=MAX_K, description="passages to return")
    since: str | None = Field(None, description="only articles dated on or after this ISO date")
    until: str | None = Field(None, description="only articles dated on or before this ISO date")
    sources: list[str] = Field(default_factory=list, description="only these sources")
    languages: list[Literal["nb", "nn", "en"]] = Field(
        default_factory=list, description="only these languages"
    )
    mode: Mode = Field("hybrid", description="hybrid (dense + BM25), dense or bm25")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        # LangChain's models ignore a field they lack, so `search_kwargs={"k": 1}` (a vector store's idiom)
        # returned five passages without a word.
        unknown = sorted(set(data) - set(cls.model_fields)) if isinstance(data, dict) else []
        if unknown:
            kwargs = data.get("search_kwargs")
            example = (
                f"give k={kwargs['k']!r} itself" if isinstance(kwargs, dict) and "k" in kwargs else "give it"
            )
            fields = ", ".join(f for f in cls.model_fields if f not in BaseRetriever.model_fields)
            raise ValueError(
                f"{unknown[0]}: not a field of {cls.__name__}; {example} as one of its fields: {fields}"
            )
        return data

    def _call_options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        allowed = {"k", "since", "until", "sources", "languages", "mode"}
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise BadInputError(
                unknown[0], f"not an option of {type(self).__name__}; use {', '.join(sorted(allowed))}"
            )
        options = {name: getattr(self, name) for name in allowed} | overrides
        if options["mode"] not in ("hybrid", "dense", "bm25"):
            raise BadInputError("mode", f"{options['mode']!r} is not hybrid, dense or bm25")
        return options


class KildeRetriever(_FilterFields):
    """In-process: Kilde's `HybridRetriever` over the local index (or a `chroma run` server)."""

    retriever: Any = Field(description="an assistant.answering.retrieval.HybridRetriever (see from_settings)")

    @classmethod
    def from_settings(cls, settings=None, **fields: Any) -> KildeRetriever:
        """Open the index the settings name (default: resolved from flags, env and kilde.toml)."""
        from assistant.build import build_assistant
        from assistant.core.config import resolve_settings

        return cls(retriever=build_assistant(settings or resolve_settings()).retriever, **fields)

    def search(self, query: str, **overrides: Any) -> list[dict[str, Any]]:
        """The passages as JSON dicts (what `/api/search` and the MCP tool return)."""
        options = self._call_options(overrides)
        query, k = check_query(query, options["k"])
        filters = make_filters(options["since"], options["until"], options["sources"], options["languages"])
        retrieval = self.retriever.retrieve(query, k, filters, options["mode"])
        return [passage_of(hit) for hit in retrieval.hits]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        return [document_of(p) for p in self.search(query, **overrides)]


class KildeHTTPRetriever(_FilterFields):
    """Over HTTP: `POST {url}/api/search` of a `kilde serve`. `headers` carries what the server's auth mode
    needs (a session cookie, or nothing on loopback); errors come back as Kilde's typed errors."""

    url: str = Field("http://127.0.0.1:7860", description="where `kilde serve` listens")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = 60.0

    def _payload(self, query: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """The request body; checked here first, so bad input fails the same way as in-process."""
        options = self._call_options(overrides)
        query, k = check_query(query, options["k"])
        filters = make_filters(options["since"], options["until"], options["sources"], options["languages"])
        return {
            "query": query,
            "k": k,
            "retriever": options["mode"],
            "filters": {
                "since": filters.since,
                "until": filters.until,
                "sources": list(filters.sources),
                "languages": list(filters.languages),
            },
        }

    def _endpoint(self) -> str:
        return self.url.rstrip("/") + "/api/search"

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        payload = self._payload(query, overrides)
        try:
            with http_client(self.url, timeout=self.timeout_s) as client:
                response = client.post(self._endpoint(), json=payload, headers=self.headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._unreached(exc) from None
        return self._documents(response)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **overrides: Any
    ) -> list[Document]:
        payload = self._payload(query, overrides)
        try:
            async with async_http_client(self.url, timeout=self.timeout_s) as client:
                response = await client.post(self._endpoint(), json=payload, headers=self.headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._unreached(exc) from None
        return self._documents(response)

    def _unreached(self, exc: Exception) -> KildeError:
        # A url httpx cannot use (no scheme, a bad port) is the caller's setting, not a server that is down.
        if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
            return ConfigError(
                f"KildeHTTPRetriever url {self.url[:200]!r} is not a URL httpx can use ({exc}); "
                "give where `kilde serve` listens, e.g. http://127.0.0.1:7860"
            )
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(
                f"Kilde at {self.url} did not answer within {self.timeout_s:g} s (timeout_s): "
                f"{type(exc).__name__}; give it longer, or see whether the server is stuck"
            )
        return BackendError(
            f"Kilde at {self.url} did not answer: {type(exc).__name__}; is `kilde serve` running there? "
            "Start it, or give url where it listens"
        )

    def _documents(self, response: httpx.Response) -> list[Document]:
        if response.status_code == 404:
            # Not Kilde's /api/search: a url with a path (the OpenAI base …/v1), or another server.
            raise ConfigError(
                f"no Kilde search at {self._endpoint()} (HTTP 404); the url is where `kilde serve` listens "
                "(its root, not the OpenAI base …/v1), e.g. http://127.0.0.1:7860"
            )
        if response.status_code == 200:
            try:
                return [document_of(p) for p in response.json()["passages"]]
            except (ValueError, KeyError, TypeError):
                raise BackendError(
                    f"{self._endpoint()} answered HTTP 200 without Kilde's search result "
                    f"({response.headers.get('content-type', 'no content-type')}): is it `kilde serve`?"
                ) from None
        raise error_from(response)


def error_from(response: httpx.Response) -> KildeError:
    """A `kilde serve` error body, `{"error", "message"}` or OpenAI's `{"error": {"message"}}`, as the matching
    typed error; any other body is quoted."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = {**body["error"], "error": body["error"].get("code")}  # OpenAI's shape names the code `code`
    if isinstance(body, dict) and (body.get("message") or body.get("error")):
        message = str(body.get("message") or body.get("error"))
    else:
        message = response.text[:200] or "(no body)"
    code = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    if status in (401, 403):
        return ConfigError(f"Kilde refused the request (HTTP {status}): {message}")
    # Not bad input, nor a failure: the same search succeeds later, so the caller gets the wait the server
    # names. A 503 that names one (a proxy's, say) is busy too; one without, `not_ready` (no index), is not.
    retry_after = whole_seconds(response.headers.get("retry-after"))
    when = f"retry in {retry_after} s" if retry_after is not None else "retry later"
    if status == 429:
        return RateLimitedError(f"Kilde's rate limit was reached (HTTP 429: {message}); {when}", retry_after)
    if status == 503 and (code == "busy" or "retry-after" in response.headers):
        # `busy`: no turn was free; otherwise what the server names, e.g. its Chroma server out of reach.
        why = "Kilde is too busy to search now" if code == "busy" else "Kilde cannot search now"
        return ServerBusyError(f"{why} (HTTP 503: {message}); {when}", retry_after)
    if 400 <= status < 500:
        return BadInputError("kilde search", f"HTTP {status}: {message}")
    return BackendError(f"Kilde failed (HTTP {status}): {message}")


def whole_seconds(retry_after: str | None) -> int | None:
    """A Retry-After header's delay in seconds, as `kilde serve` sends it; None for none or an HTTP date."""
    value = (retry_after or "").strip()
    return int(value) if value.isdigit() else None
