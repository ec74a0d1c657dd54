"""An OpenAI-compatible face: `POST /v1/chat/completions` (plain and streaming) and `GET /v1/models`.

Chat front-ends, the `openai` client and LangChain's `ChatOpenAI(base_url=…/v1)` can use Kilde as a model
named `kilde`. The last message is the question (it must be the user's), the earlier user and assistant
messages are the history; system messages are ignored, since Kilde answers only from the archive. The
reply's content is the cited answer with its `[n]` markers, then a sources list; the structured answer
(citations with quote and offsets, sentences, answerability) travels in the extra field `kilde`, which
clients may ignore. A Kilde extension: `filters` ({since, until, sources, languages}, as in `/api/ask`).

The request's schema and its validation are in ui/openai_schema.py, OpenAI's error shape in
ui/openai_errors.py; this module shapes the replies, plain and streamed, and serves the routes. They share
`/api/ask`'s rate limiter and its turns for the answering slots (a question without a turn within the request
budget is a 503 with Retry-After, which the `openai` client waits out and retries; a stream its client left holds
its turn until its worker thread ends), and the `Gate` middleware runs in front of them as of every route.
`OpenAIErrors` rewrites every error under /v1/ (the Gate's refusals included) into OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`. OpenAI's routes asked at the root (a client whose base URL
lacks /v1) get a 404 in that shape naming the base URL to use.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest, Delta
from assistant.core.errors import BadInputError, KildeError
from assistant.core.tokens import get_encoding
from assistant.core.types import Answer
from ui.api import RateLimited, finite_numbers_only, json_body_required
from ui.completion_limits import CompletionLimits, ContentCutter, as_shown, cut_at, cut_content
from ui.fairness import Busy, FairTurns
from ui.limits import RateLimiter
from ui.openai_errors import (
    INTERNAL_ERROR,
    ModelNotFound,
    error_body,
    status_of_error,
)
from ui.openai_schema import MODEL_ID, SOURCES_HEADING, ChatIn, ask_request_of, limits_of
from ui.security import client_key

# Usage is counted with the encoding of OpenAI's current models; Kilde runs none, so it measures size only.
USAGE_ENCODING = "o200k_base"


def usage(encoding, request: AskRequest, content: str) -> dict[str, int]:
    """OpenAI's `usage`, counted with tiktoken over the text Kilde read of the messages (the question and the
    turns of history it read, as `Assistant.validate` gives them) and over the reply's content. Messages it
    does not read (system messages, older turns) are not counted, nor tokenised: a long old message cost every
    later question of the chat its count. No per-message framing is added: Kilde has no chat template to count."""
    read = [request.question, *(turn.content for turn in request.history)]
    prompt = sum(len(encoding.encode(text, disallowed_special=())) for text in read)
    completion_tokens = len(encoding.encode(content, disallowed_special=()))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def sources_text(answer: Answer) -> str:
    if not answer.citations:
        return ""
    lines = [SOURCES_HEADING.get(answer.language, SOURCES_HEADING["en"])]
    for c in answer.citations:
        details = ", ".join(x for x in (c.source, c.date) if x)
        lines.append(
            f"[{c.n}] {c.title}" + (f" ({details})" if details else "") + (f" {c.url}" if c.url else "")
        )
    return "\n".join(lines)


def tail_text(answer: Answer) -> str:
    """What follows the answer text in the content: the notice, if any, then the sources list."""
    parts = [p for p in (answer.notice, sources_text(answer)) if p]
    return "".join("\n\n" + p for p in parts)


def kilde_field(answer: Answer) -> dict[str, Any]:
    """The structured answer (`kilde ask --json` without the retrieved passages' text)."""
    data = answer.to_dict()
    data.pop("retrieved", None)
    return data


def finish_reason(answer: Answer) -> str:
    return "length" if answer.partial and answer.backend != "extractive" else "stop"


def completion(answer: Answer, usage_of, limits: CompletionLimits, encoding) -> dict[str, Any]:
    content, cut = cut_content(answer.answer + tail_text(answer), limits, encoding)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": cut or finish_reason(answer),
            }
        ],
        "usage": usage_of(content),
        "kilde": kilde_field(as_shown(answer, answer.answer, content[: len(answer.answer)])),
    }


class _Done:
    pass


DONE = _Done()


_RUNNING: set[asyncio.Future] = set()


class AnswerStream:
    """`Assistant.stream` in a worker thread, in its client's turn for one of the shared slots (ui/fairness.py, as
    /api/ask takes it); its events reach the event loop through a queue as soon as they are made. A question that
    gets no turn within the request budget is `Busy`, its only event: it waited for a slot without end. `close()`
    stops it at its next event (the client went away); the turn is held until the worker thread has ended, so no
    more answers are computed at once than there are slots."""

    def __init__(self, assistant: Assistant, request: AskRequest, turns: FairTurns, client: str):
        self.assistant = assistant
        self.request = request
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stopped = threading.Event()
        self.working = False  # the worker thread has been started, in the turn
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(self._run(turns, client))
        _RUNNING.add(self.task)  # the loop holds tasks weakly; a stream its client left still runs to its end
        self.task.add_done_callback(_RUNNING.discard)

    async def _run(self, turns: FairTurns, client: str) -> None:
        try:
            async with turns.turn(client):
                self.working = True
                await anyio.to_thread.run_sync(self._produce)
        except Busy as exc:
            self.queue.put_nowait(exc)
            self.queue.put_nowait(DONE)

    def _put(self, item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the server shut down meanwhile: nobody is left to read it
            self.stopped.set()

    def _produce(self) -> None:
        try:
            for event in self.assistant.stream(self.request):
                if self.stopped.is_set():
                    return
                self._put(event)
        except Exception as exc:
            self._put(exc)
        finally:
            self._put(DONE)

    async def next(self):
        return await self.queue.get()

    def close(self) -> None:
        self.stopped.set()
        # Only a wait for a turn is cancelled. A running thread ends at its next event, and the task with it, which
        # then gives the turn back: cancelled, the task would give it back at once (a worker thread's await is not
        # shielded from asyncio's own cancelling), while the thread went on computing the answer in no turn.
        if not self.task.done() and not self.working:
            self.task.cancel()


def sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


async def chunks(stream: AnswerStream, first, usage_of, cutter: ContentCutter) -> AsyncIterator[bytes]:
    """`usage_of(content)`: the usage chunk's counts, or None for no usage chunk. `cutter` cuts the content as
    it goes: once it is cut, the answer's later pieces are read but not sent, and the last chunk says why."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
        return sse(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL_ID,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra,
            }
        )

    # Whitespace around the pieces is held back until more text follows, so that the streamed content is
    # exactly the plain reply's (the answer text is stripped). `content` is what was sent, `written` the
    # answer text before any cut.
    pending, sent_text, content, written = "", False, [], []
    try:
        event = first
        yield chunk({"role": "assistant", "content": ""})
        while not isinstance(event, _Done):
            if isinstance(event, Delta):
                text = pending + event.text if sent_text else event.text.lstrip()
                shown = text.rstrip()
                sent_text = sent_text or bool(shown)
                pending = text[len(shown) :]
                written.append(shown)
                if sent := cutter.feed(shown):
                    content.append(sent)
                    yield chunk({"content": sent})
            elif isinstance(event, Answer):
                if sent := cutter.feed(tail_text(event)) + cutter.finish():
                    content.append(sent)
                    yield chunk({"content": sent})
                whole = "".join(written)
                shown = as_shown(event, whole, "".join(content)[: len(whole)])
                yield chunk({}, cutter.reason or finish_reason(event), kilde=kilde_field(shown))
            elif isinstance(event, Exception):
                # Headers are sent: the error goes in the stream, as OpenAI's servers do; clients raise it.
                status, code = status_of_error(event)
                message = str(event) if isinstance(event, KildeError) else INTERNAL_ERROR
                yield sse(error_body(status, code, message))
                return
            event = await stream.next()
        if usage_of is not None:
            yield sse(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": MODEL_ID,
                    "choices": [],
                    "usage": usage_of("".join(content)),
                }
            )
        yield sse("[DONE]")
    finally:
        stream.close()


def openai_router(assistant: Assistant, limiter: RateLimiter, turns: FairTurns) -> APIRouter:
    router = APIRouter(tags=["openai"])

    def encoding():
        return get_encoding(USAGE_ENCODING, assistant.settings.tiktoken_cache_dir)

    @router.get("/v1/models", summary="OpenAI-compatible: the one model, `kilde`")
    def models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @router.get("/v1/models/{model}", summary="OpenAI-compatible: one model", response_model=None)
    def model(model: str) -> dict | JSONResponse:
        if model != MODEL_ID:
            exc = ModelNotFound("model", f"no model {model[:80]!r}; this server has one model, {MODEL_ID!r}")
            return openai_error(exc)
        return model_card()

    @router.post(
        "/v1/chat/completions",
        response_model=None,
        summary="OpenAI-compatible chat: the cited answer to the last user message",
        # FastAPI leaves another content type's body unparsed; a NaN it parses as a number.
        dependencies=[Depends(json_body_required), Depends(finite_numbers_only)],
    )
    async def chat(body: ChatIn, request: Request):
        retry_after = limiter.check(client_key(request))  # first, as in /api/ask: a bad request counts too
        if retry_after is not None:
            raise RateLimited(limiter.per_minute, retry_after)
        try:
            ask_request = assistant.validate(ask_request_of(body))
            limits = limits_of(body)
        except BadInputError as exc:
            return openai_error(exc)
        tokens = encoding()
        # A generative answer is read from its model only as far as the reply shows it.
        ask_request = replace(ask_request, cut_at=cut_at(limits, tokens))
        stream = AnswerStream(assistant, ask_request, turns, client_key(request))

        def usage_of(content: str) -> dict[str, int]:
            return usage(tokens, ask_request, content)

        if not body.stream:
            answer = None
            try:
                while not isinstance(event := await stream.next(), _Done):
                    if isinstance(event, BadInputError):  # a source filter no article has, say
                        return openai_error(event)
                    if isinstance(event, Exception):
                        raise event
                    if isinstance(event, Answer):
                        answer = event
            finally:
                stream.close()
            return JSONResponse(completion(answer, usage_of, limits, tokens))
        # The response starts with the first event, so an error before any answer text (an index that
        # went missing, say) is still a plain HTTP error with its status, not a broken stream.
        first = await stream.next()
        if isinstance(first, Exception):
            stream.close()
            if isinstance(first, BadInputError):
                return openai_error(first)
            raise first
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            chunks(stream, first, usage_of if include_usage else None, ContentCutter(limits, tokens)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def unknown(request: Request) -> JSONResponse:
        # A route that exists, asked with another method ("GET /v1/chat/completions", "DELETE /v1/models"): said so,
        # not "No route" naming it. Every such method is answered here alone, so none has a 405 route of its own.
        path = request.path_params.get("path", "")
        allowed = (
            "POST" if path == "chat/completions" else "GET" if re.fullmatch(r"models(/[^/]+)?", path) else ""
        )
        if allowed:
            return JSONResponse(
                error_body(
                    405, "method_not_allowed", f"Use {allowed} /v1/{path[:80]}, not {request.method}."
                ),
                status_code=405,
                headers={"Allow": allowed},
            )
        return not_served(request, "Kilde serves /v1/chat/completions and /v1/models.")

    def outside_v1(request: Request) -> JSONResponse:
        # A client given the server's root as its base URL asks for OpenAI's routes there.
        base = str(request.base_url).rstrip("/")
        return not_served(request, f"Kilde's OpenAI-compatible API is under /v1: use the base URL {base}/v1.")

    # A plain route with no methods listed matches every method, TRACE and PROPFIND too, which a list would
    # leave to Gradio's 404 (as under /api: ui/api.py).
    router.add_route("/v1/{path:path}", unknown, methods=[], include_in_schema=False)
    router.add_route("/v1", unknown, methods=[], include_in_schema=False)
    for path in OPENAI_ROUTES:
        router.add_route(path, outside_v1, methods=[], include_in_schema=False)
    return router


# OpenAI's routes a client asks for at the root when its base URL lacks /v1 (the client appends them to it).
OPENAI_ROUTES = (
    "/chat/completions",
    "/completions",
    "/responses",
    "/embeddings",
    "/models",
    "/models/{model}",
)


def not_served(request: Request, where: str) -> JSONResponse:
    """OpenAI's words and code (none) for a route it does not serve, then where Kilde's are."""
    path = request.url.path
    message = f"Invalid URL ({request.method[:20]} {path[:84]}); {where}"
    return JSONResponse(error_body(404, None, message), status_code=404)


# What the assistant names in its refusals, as the parameter of the request that holds it.
PARAMS = {
    "question": "messages",
    "history": "messages",
    "source filter": "filters.sources",
    "language filter": "filters.languages",
}


def openai_error(exc: BadInputError) -> JSONResponse:
    """Bad input in OpenAI's shape, with OpenAI's code (`status_of_error`) and the parameter at fault in `param`.
    Answered here, not by the app's handler for Kilde's errors, whose body has no parameter to name."""
    status, code = status_of_error(exc)
    param = PARAMS.get(exc.source, exc.source)
    return JSONResponse(error_body(status, code, str(exc), param), status_code=status)


def model_card() -> dict:
    return {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "kilde"}
