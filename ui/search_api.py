"""`POST /api/search`: Kilde's hybrid retrieval without an answer, for `KildeHTTPRetriever` and other tools.

It runs under the same rules as `/api/ask`: the question's checks (`check_query`: a query `/api/ask` would
refuse as a question is a 400 with the same reason), the `Gate` middleware (origin, auth mode), the per-client rate
limit (a search counts as a question) and the shared answering turns (ui/fairness.py): one search or question
per client at a time, and a search that gets no turn within the request budget is answered 503 `busy` with
Retry-After.
"""

from __future__ import annotations

from typing import Literal

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from assistant.answering.assistant import Assistant
from assistant.core.types import OFFSET_UNIT, Filters
from assistant.langchain_retriever import MAX_K, check_query, passage_of
from ui.api import (
    ERRORS,
    STRICT,
    FiltersIn,
    RateLimited,
    filters_from,
    finite_numbers_only,
    json_body_required,
)
from ui.fairness import FairTurns
from ui.limits import RateLimiter
from ui.security import client_key


class SearchIn(BaseModel):
    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={
            "examples": [{"query": "Article 4 mutual defence", "k": 5, "filters": {"since": "2024-01-01"}}]
        },
    )
    query: str = Field(description="1 to 2000 characters")
    k: int = Field(5, ge=1, le=MAX_K)
    filters: FiltersIn | None = Field(None, description="null is no filter")
    retriever: Literal["hybrid", "dense", "bm25"] = "hybrid"


class PassageOut(BaseModel):
    chunk_id: str
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    language: str
    start: int = Field(
        description=f"where the passage starts in the article text (GET /api/articles/{{id}}), {OFFSET_UNIT}"
    )
    end: int = Field(description=f"where it ends: text[start:end] is the passage; {OFFSET_UNIT}")
    score: float
    dense_score: float | None
    lexical_score: float | None
    text: str


class SearchOut(BaseModel):
    query: str
    passages: list[PassageOut]


def search_router(assistant: Assistant, limiter: RateLimiter, turns: FairTurns) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/api/search",
        response_model=SearchOut,
        tags=["search"],
        responses=ERRORS,
        summary="The passages hybrid retrieval finds for a query, with offsets into their articles",
        dependencies=[Depends(json_body_required), Depends(finite_numbers_only)],
    )
    async def search(body: SearchIn, request: Request) -> dict:
        retry_after = limiter.check(client_key(request))
        if retry_after is not None:
            raise RateLimited(limiter.per_minute, retry_after)
        query, k = check_query(body.query, body.k)
        filters: Filters = filters_from(body.filters)
        async with turns.turn(client_key(request)):
            retrieval = await anyio.to_thread.run_sync(
                assistant.retriever.retrieve, query, k, filters, body.retriever
            )
        return {"query": query, "passages": [passage_of(hit) for hit in retrieval.hits]}

    return router
