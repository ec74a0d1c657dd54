"""HTTP API routes: POST /api/ask, GET (and HEAD) /api/articles/{id}, /healthz and /readyz.

`/api/ask` returns `Answer.to_dict()`, the same JSON as `kilde ask --json`. Errors are JSON bodies
`{"error": code, "message": text}`; the handlers that produce them live in ui/server.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match, Route

from assistant.answering.assistant import MAX_HISTORY_TURNS, MAX_TOP_K, MAX_TURN_CHARS, Assistant
from assistant.answering.context import AskRequest
from assistant.core.config import Settings
from assistant.core.errors import (
    BackendError,
    BadInputError,
    ConfigError,
    IndexDamagedError,
    IndexMissingError,
    KildeError,
    StoreBusyError,
    StoreUnreachableError,
)
from assistant.core.types import OFFSET_UNIT, Filters, Turn
from ui.fairness import Busy, FairTurns
from ui.limits import RateLimiter
from ui.readiness import IndexReadiness
from ui.security import client_key

NOT_JSON = "The request body is not valid JSON."
# The error type of a body with NaN, Infinity or -Infinity for a number (`finite_numbers_only`).
NON_FINITE = "non_finite_number"

# Strict: a mistyped field is the 422 the docs promise, never coerced ("5" is not 5, true is not 1).
STRICT = ConfigDict(extra="forbid", strict=True)


class TurnIn(BaseModel):
    model_config = STRICT
    role: Literal["user", "assistant"]
    # No length of its own: the assistant reads the first MAX_TURN_CHARS (`read_history`), the body limit bounds it.
    content: str


class FiltersIn(BaseModel):
    model_config = STRICT
    since: str | None = Field(None, description="ISO date, inclusive", examples=["2024-01-01"])
    until: str | None = Field(None, description="ISO date, inclusive")
    sources: list[str] = Field(default_factory=list, max_length=50)
    languages: list[Literal["nb", "nn", "en"]] = Field(default_factory=list)


class AskIn(BaseModel):
    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={"examples": [{"question": "What does Article 4 commit each side to?"}]},
    )
    question: str = Field(description="1 to 2000 characters")
    # Any number of turns, as on the OpenAI face: a chat that resends its whole conversation was refused from its
    # 21st question on, though only the last turns are read.
    history: list[TurnIn] | None = Field(
        None,
        description=f"earlier turns, oldest first, for follow-up questions; null is none. Any number within the "
        f"body limit: Kilde reads the last {MAX_HISTORY_TURNS} that say something, the first {MAX_TURN_CHARS} "
        "characters of each",
    )
    filters: FiltersIn | None = Field(None, description="null is no filter")
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K)
    retriever: Literal["hybrid+rerank", "hybrid", "dense", "bm25"] | None = None


class CitationOut(BaseModel):
    n: int
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    chunk_id: str
    quote: str
    start: int = Field(
        description=f"where the quote starts in the article text (GET /api/articles/{{id}}), {OFFSET_UNIT}"
    )
    end: int = Field(description=f"where it ends: text[start:end] is the quote; {OFFSET_UNIT}")
    score: float
    answer_start: int | None = Field(
        description=f"where the reader's answer span inside the quote starts (null: no reader chose it), {OFFSET_UNIT}"
    )
    answer_end: int | None = Field(description=f"where that span ends, {OFFSET_UNIT}")


class AnswerOut(BaseModel):
    """Documentation of `Answer.to_dict()`; the route returns that dict unchanged."""

    question: str
    answer: str
    answerable: bool
    language: str
    backend: str
    standalone_question: str | None
    notice: str | None
    partial: bool
    quoted_original_languages: list[str] = Field(
        description="the languages of the quoted articles (nb, nn, en) when some quote is not in the question's "
        "language: an extractive answer quotes verbatim; empty otherwise"
    )
    citations: list[CitationOut]
    sentences: list[dict[str, Any]]
    retrieved: list[dict[str, Any]]
    timings_ms: dict[str, float]


class ArticleOut(BaseModel):
    id: str
    title: str
    text: str
    content_hash: str
    language: str
    date: str | None
    source: str | None
    url: str | None
    author: str | None


class ErrorOut(BaseModel):
    error: str
    message: str


ERRORS = {
    400: {"model": ErrorOut},
    404: {"model": ErrorOut},
    415: {"model": ErrorOut},
    422: {"model": ErrorOut},
    429: {"model": ErrorOut},
    503: {"model": ErrorOut},
}


class RateLimited(BadInputError):
    """A client asked more often than KILDE_RATE_LIMIT per minute."""

    def __init__(self, limit: int, retry_after: int):
        super().__init__(
            "rate limit", f"too many questions: the limit is {limit} per minute; try again in {retry_after} s"
        )
        self.retry_after = retry_after


class NotFound(BadInputError):
    """No such article."""


class NotJSON(BadInputError):
    """A body sent without a JSON content type: FastAPI leaves it unparsed, and its 422 said "not an object"."""

    def __init__(self, content_type: str):
        got = f"content-type {content_type[:80]!r}" if content_type else "no content-type"
        super().__init__("body", f"send it as JSON with the header content-type: application/json ({got})")


def json_body_required(request: Request) -> None:
    """A dependency of the routes that take a JSON body; runs before the body is validated."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if not (media_type == "application/json" or media_type.endswith("+json")):
        raise NotJSON(content_type)


class NonFiniteNumber(ValueError):
    """NaN, Infinity or -Infinity where a JSON body has a number; its one argument is the word."""


def non_finite_number(body: bytes) -> str | None:
    """The first NaN, Infinity or -Infinity a JSON body has for a number, else None. Python's parser (FastAPI's)
    reads them, and `json.dumps` writes them; JSON has none, and neither OpenAI's API nor a strict client can parse
    such a body. Only a body that has the words, in a string or not, is parsed again."""
    if b"NaN" not in body and b"Infinity" not in body:
        return None

    def refuse(constant: str):
        raise NonFiniteNumber(constant)

    try:
        json.loads(body, parse_constant=refuse)
    except NonFiniteNumber as exc:
        return str(exc)
    except ValueError:  # not JSON at all: FastAPI has refused it before
        return None
    return None


def not_finite(constant: str) -> str:
    return (
        f"{NOT_JSON[:-1]}: {constant} is not a JSON value (JSON numbers are finite; Python's json.dumps writes NaN "
        "and Infinity unless told allow_nan=False)."
    )


async def finite_numbers_only(request: Request) -> None:
    """A dependency of the routes that take a JSON body, run once the body is parsed and before it is validated: a
    body with NaN or Infinity for a number is refused as the body that is not JSON it is, naming the word, in each
    face's shape (ui/server.py `validation_message`, ui/openai_errors.py `invalid_body`)."""
    constant = non_finite_number(await request.body())
    if constant is not None:
        error = {"type": NON_FINITE, "loc": ("body",), "msg": not_finite(constant), "input": constant}
        raise RequestValidationError([error])


def status_of(exc: KildeError) -> tuple[int, str]:
    if isinstance(exc, RateLimited):
        return 429, "rate_limited"
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, NotJSON):
        return 415, "unsupported_media_type"
    if isinstance(exc, BadInputError):
        return 400, "bad_request"
    if isinstance(exc, Busy):
        return 503, "busy"
    if isinstance(exc, (IndexMissingError, IndexDamagedError, StoreBusyError, StoreUnreachableError)):
        return 503, "not_ready"
    if isinstance(exc, BackendError):
        return 502, "backend_error"
    if isinstance(exc, ConfigError):
        return 500, "config_error"
    return 500, "error"


def filters_from(body: FiltersIn | None) -> Filters:
    body = body or FiltersIn()
    return Filters.parse(body.since, body.until, body.sources, body.languages, field_prefix="filters.")


def answer_turns(settings: Settings) -> FairTurns:
    """The answering turns every face shares: `ui_concurrency` slots, one question per client at a time."""
    return FairTurns(settings.ui_concurrency, settings.request_budget_s)


def api_router(
    assistant: Assistant, settings: Settings, limiter: RateLimiter, turns: FairTurns | None = None
) -> APIRouter:
    router = APIRouter()
    # At most `ui_concurrency` questions are answered at once, and at most one per client (ui/fairness.py).
    # A question waiting for its turn waits in the event loop, not in a worker thread: the default thread
    # pool (40) is shared with /healthz, /readyz, /api/articles and both Gradio faces. /api/search takes its
    # turn here too (ui/server.py passes `turns`), and so do the OpenAI-compatible routes.
    turns = turns or answer_turns(settings)
    readiness = IndexReadiness(assistant.store)

    @router.post(
        "/api/ask",
        response_model=None,
        tags=["ask"],
        responses={200: {"model": AnswerOut}, **ERRORS},
        summary="Answer a question with citations (the JSON of `kilde ask --json`)",
        dependencies=[Depends(json_body_required), Depends(finite_numbers_only)],
    )
    async def ask(body: AskIn, request: Request) -> JSONResponse:
        retry_after = limiter.check(client_key(request))
        if retry_after is not None:
            raise RateLimited(limiter.per_minute, retry_after)
        ask_request = assistant.validate(
            AskRequest(
                question=body.question,
                history=tuple(Turn(t.role, t.content) for t in body.history or ()),
                filters=filters_from(body.filters),
                top_k=body.top_k,
                retriever=body.retriever,
            )
        )
        async with turns.turn(client_key(request)):
            answer = await anyio.to_thread.run_sync(assistant.ask, ask_request)
        return JSONResponse(answer.to_dict())

    @readable(
        router,
        "/api/articles/{article_id:path}",  # an HTML page's id is its canonical URL, slashes and all
        response_model=ArticleOut,
        tags=["articles"],
        responses=ERRORS,
        summary="One article's cleaned text and metadata",
    )
    def article(article_id: str) -> dict:
        found = assistant.store.get_article(article_id) if len(article_id) <= 512 else None
        if found is None:
            raise NotFound(
                "article", f"no article with id {article_id[:80]!r}; list them with `kilde articles`"
            )
        record = asdict(found)
        record.pop("origin", None)  # a path on the server
        return record

    @readable(router, "/healthz", tags=["health"], summary="Liveness")
    def healthz() -> dict:
        return {"status": "ok"}

    @readable(
        router,
        "/readyz",
        tags=["health"],
        responses={503: {"model": ErrorOut}},
        summary="Readiness: the index is loaded",
    )
    def readyz() -> JSONResponse:
        index = readiness.check()  # one store query a probe (ui/readiness.py)
        model = assistant.model_status()  # an unreachable model server degrades to extractive answers
        degraded = model is not None and model["status"] != "ok"
        return JSONResponse(
            {
                "status": "degraded" if degraded else "ready",
                "articles": index.articles,
                "chunks": index.chunks,
                "embedder": index.embedder,
                "backend": settings.llm_backend,
                **({"model": model} if model is not None else {}),
            }
        )

    def not_routed(request: Request) -> JSONResponse:
        # A path of the API asked with a method none of its routes takes ("GET /api/ask", "POST /healthz") lands
        # here, past the routes themselves: it is told which methods to use, not that the path does not exist.
        path = request.url.path
        allowed = sorted(
            {
                method
                for route in _routes(request.app.routes)
                if route.endpoint is not not_routed and route.matches(request.scope)[0] == Match.PARTIAL
                for method in route.methods or ()
            }
        )
        if allowed:
            return JSONResponse(
                {
                    "error": "method_not_allowed",
                    "message": f"Use {' or '.join(allowed)} {path[:80]}; see /docs for the API.",
                },
                status_code=405,
                headers={"Allow": ", ".join(allowed)},
            )
        return JSONResponse(
            {"error": "not_found", "message": f"No API route {path[:80]}; see /docs for the API."},
            status_code=404,
        )

    # Last, so that every route above is tried first. Without these, Gradio (mounted at /) would answer
    # the API's paths with its own 404 `{"detail": ...}`. Starlette routes whose set of methods is empty: they
    # match every method, TRACE and PROPFIND too, where any list of methods would leave the rest to Gradio
    # (and no methods at all, None, means GET alone).
    for owned in ("/healthz", "/readyz", "/api", "/api/{path:path}"):
        router.add_route(owned, not_routed, methods=[], include_in_schema=False)
    return router


def readable(router: APIRouter, path: str, **options):
    """`router.get`, and HEAD answered by the same endpoint (health probes send HEAD; the server sends
    no body). HEAD stays out of the OpenAPI schema, where it would repeat every GET."""

    def register(endpoint):
        router.add_api_route(path, endpoint, methods=["GET"], **options)
        router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **options)
        return endpoint

    return register


def _routes(routes) -> Iterator[Route]:
    """Every route of an app, those of its included routers too (FastAPI keeps each included router whole)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, Route):
            yield route
