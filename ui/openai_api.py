"""An OpenAI-compatible face: `POST /v1/chat/completions` (plain and streaming) and `GET /v1/models`.

Chat front-ends, the `openai` client and LangChain's `ChatOpenAI(base_url=…/v1)` can use Kilde as a model
named `kilde`. The last message is the question (it must be the user's), the earlier user and assistant
messages are the history; system messages are ignored, since Kilde answers only from the archive. The
reply's content is the cited answer with its `[n]` markers, then a sources list; the structured answer
(citations with quote and offsets, sentences, answerability) travels in the extra field `kilde`, which
clients may ignore. A Kilde extension: `filters` ({since, until, sources, languages}, as in `/api/ask`).

The routes share `/api/ask`'s rate limiter and concurrency slots, and the `Gate` middleware runs in front
of them as of every route. `OpenAIErrors` rewrites every error under /v1/ (the Gate's refusals included)
into OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest, Delta
from assistant.core.errors import BadInputError, KildeError
from assistant.core.tokens import get_encoding
from assistant.core.types import Answer, Filters, Turn
from ui.api import FiltersIn, NotFound, RateLimited, filters_from, status_of
from ui.completion_limits import (
    MAX_STOP_LENGTH,
    MAX_STOP_SEQUENCES,
    CompletionLimits,
    ContentCutter,
    as_shown,
    cut_content,
)
from ui.limits import RateLimiter
from ui.security import client_key

MODEL_ID = "kilde"
MAX_HISTORY_TURNS = 40  # as /api/ask; a longer conversation keeps its latest turns
# Usage is counted with the encoding of OpenAI's current models; Kilde runs none, so it measures size only.
USAGE_ENCODING = "o200k_base"
SOURCES_HEADING = {"nb": "Kilder:", "nn": "Kjelder:", "en": "Sources:"}
# A sources list Kilde appended to an earlier reply: cut from the history, it is not part of the answer.
SOURCES_TAIL = re.compile(r"\n\n(?:Sources|Kilder|Kjelder):\n\[\d+\] .*\Z", re.DOTALL)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    refusal: str | None = None  # an assistant's `refusal` part, as OpenAI's own replies hold


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class ChatIn(BaseModel):
    """The fields Kilde reads or refuses. `max_tokens`, `max_completion_tokens` and `stop` cut the reply as
    OpenAI's do (ui/completion_limits.py). Sampling parameters (temperature, top_p, …) are held to OpenAI's
    ranges, then ignored, since the answer is quoted from the archive, not sampled; other OpenAI parameters
    are accepted and ignored. A parameter Kilde cannot honour and a client relies on (a JSON reply, a forced
    tool call, logprobs) is refused, since a reply without it breaks the client further on."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": MODEL_ID,
                    "messages": [{"role": "user", "content": "What does Article 4 commit each side to?"}],
                }
            ]
        },
    )
    model: str
    # No cap on the count: a long chat keeps its latest turns, and the body's size (1 MiB) bounds the work.
    messages: list[MessageIn] = Field(min_length=1)
    # OpenAI takes null for "not given" in each optional parameter.
    stream: bool | None = False
    n: int | None = 1
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    response_format: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    logprobs: bool | None = None
    filters: FiltersIn | None = Field(None, description="Kilde extension: as in /api/ask")


def text_of(message: MessageIn, index: int, *, asked: bool) -> str:
    """The text Kilde reads of a message. Only the question `asked` must be text: an earlier turn's other parts
    (a picture, say) are left out of the history, since a chat that once held one is resent with every later
    question, and an assistant's refusal part is what that turn said, as Kilde's own refusals are text."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for n, part in enumerate(message.content):
        if part.type == "text":
            if part.text is None:  # OpenAI refuses it too; read as "", the client's bug would go unseen
                raise BadInputError(
                    f"messages[{index}].content[{n}].text",
                    'a \'text\' part needs its text: {"type": "text", "text": "…"}',
                )
            parts.append(part.text)
        elif asked:
            raise BadInputError(
                f"messages[{index}].content", f"Kilde reads text only, not {part.type!r} parts"
            )
        elif part.type == "refusal" and message.role == "assistant" and part.refusal:
            parts.append(part.refusal)
    return "".join(parts)


def refuse_what_cannot_be_honoured(body: ChatIn) -> None:
    """A client that asks for JSON, a tool call or logprobs parses the reply for them: a cited text answer
    would fail there, far from the cause (LangChain's `with_structured_output` returned None)."""
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise BadInputError(
            "response_format",
            f"Kilde answers in text with citations, not {kind!r}; leave response_format out "
            "(the structured answer is in the reply's `kilde` field)",
        )
    choice = body.tool_choice
    free = isinstance(choice, dict) and (choice.get("allowed_tools") or {}).get("mode") == "auto"
    if choice == "required" or (isinstance(choice, dict) and not free):
        raise BadInputError(
            "tool_choice",
            "Kilde calls no tools, it answers in text; leave tool_choice out, or 'auto' or 'none'",
        )
    if body.logprobs:
        raise BadInputError(
            "logprobs", "Kilde quotes its answer, it does not sample one: there are no logprobs"
        )


def ask_request_of(body: ChatIn) -> AskRequest:
    if body.model != MODEL_ID:
        raise ModelNotFound("model", f"no model {body.model[:80]!r}; this server has one model, {MODEL_ID!r}")
    if body.n not in (1, None):
        raise BadInputError("n", f"Kilde gives one answer per question; n must be 1, got {body.n}")
    refuse_what_cannot_be_honoured(body)
    last = body.messages[-1]
    if last.role != "user":
        raise BadInputError(
            "messages", f"the last message must be the user's question, not a {last.role!r} message"
        )
    # Only the turns the assistant reads are looked at: an older message that is too long is dropped with its
    # turn, not refused on every later question of the chat. The assistant cuts long turns.
    said = [(i, m) for i, m in enumerate(body.messages) if m.role in ("user", "assistant")]
    asked = len(body.messages) - 1
    turns = []
    for index, message in said[-(MAX_HISTORY_TURNS + 1) :]:
        text = text_of(message, index, asked=index == asked)
        if message.role == "assistant":
            text = SOURCES_TAIL.sub("", text)
        turns.append(Turn(message.role, text))
    filters = filters_from(body.filters) if body.filters else Filters()
    return AskRequest(
        question=turns[-1].content, history=tuple(turns[:-1][-MAX_HISTORY_TURNS:]), filters=filters
    )


def limits_of(body: ChatIn) -> CompletionLimits:
    """Where the reply is cut. Given both token limits (`max_tokens` is the older name), the smaller holds."""
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    if len(stop) > MAX_STOP_SEQUENCES:
        raise BadInputError(
            "stop", f"up to {MAX_STOP_SEQUENCES} stop sequences, as OpenAI takes; got {len(stop)}"
        )
    if not all(stop):
        raise BadInputError("stop", "a stop sequence cannot be empty; leave it out, or send null for none")
    if any(len(s) > MAX_STOP_LENGTH for s in stop):
        raise BadInputError("stop", f"a stop sequence is at most {MAX_STOP_LENGTH:,} characters")
    given = [n for n in (body.max_tokens, body.max_completion_tokens) if n is not None]
    return CompletionLimits(max_tokens=min(given, default=None), stop=stop)


def usage(encoding, body: ChatIn, content: str) -> dict[str, int]:
    """OpenAI's `usage`, counted with tiktoken over the text of every message sent (non-text parts aside)
    and over the reply's content. No per-message framing is added: Kilde has no chat template to count."""
    sent = []
    for message in body.messages:
        if isinstance(message.content, str):
            sent.append(message.content)
        elif message.content:
            sent.extend(p.text for p in message.content if p.type == "text" and p.text)
    prompt = sum(len(encoding.encode(text, disallowed_special=())) for text in sent)
    completion_tokens = len(encoding.encode(content, disallowed_special=()))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


class ModelNotFound(NotFound):
    """The request names a model this server does not have."""


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
    """`Assistant.stream` in a worker thread holding one of the shared slots; its events reach the event loop
    through a queue as soon as they are made. `close()` stops it at its next event (the client went away)."""

    def __init__(self, assistant: Assistant, request: AskRequest, slots: anyio.CapacityLimiter):
        self.assistant = assistant
        self.request = request
        self.slots = slots
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stopped = threading.Event()
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(anyio.to_thread.run_sync(self._produce, limiter=slots))
        _RUNNING.add(self.task)  # the loop holds tasks weakly; a stream its client left still runs to its end
        self.task.add_done_callback(_RUNNING.discard)

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
        if not self.task.done():
            self.task.cancel()  # only a wait for a slot is cancelled; a running thread ends at its next event


def sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


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
                message = (
                    str(event)
                    if isinstance(event, KildeError)
                    else "Internal error; the server log has the details."
                )
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


def status_of_error(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, KildeError):
        return status_of(exc)
    return 500, "internal_error"


def openai_router(assistant: Assistant, limiter: RateLimiter, slots: anyio.CapacityLimiter) -> APIRouter:
    router = APIRouter(tags=["openai"])

    def encoding():
        return get_encoding(USAGE_ENCODING, assistant.settings.tiktoken_cache_dir)

    @router.get("/v1/models", summary="OpenAI-compatible: the one model, `kilde`")
    def models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @router.get("/v1/models/{model}", summary="OpenAI-compatible: one model")
    def model(model: str) -> dict:
        if model != MODEL_ID:
            raise ModelNotFound("model", f"no model {model[:80]!r}; this server has one model, {MODEL_ID!r}")
        return model_card()

    @router.post(
        "/v1/chat/completions",
        response_model=None,
        summary="OpenAI-compatible chat: the cited answer to the last user message",
    )
    async def chat(body: ChatIn, request: Request):
        retry_after = limiter.check(client_key(request))  # first, as in /api/ask: a bad request counts too
        if retry_after is not None:
            raise RateLimited(limiter.per_minute, retry_after)
        try:
            ask_request = assistant.validate(ask_request_of(body))
            limits = limits_of(body)
        except BadInputError as exc:
            # OpenAI names the parameter at fault in `param`; the assistant's own names are its messages.
            status, code = status_of(exc)
            param = "messages" if exc.source in ("question", "history") else exc.source
            return JSONResponse(error_body(status, code, str(exc), param), status_code=status)
        tokens = encoding()
        stream = AnswerStream(assistant, ask_request, slots)

        def usage_of(content: str) -> dict[str, int]:
            return usage(tokens, body, content)

        if not body.stream:
            answer = None
            try:
                while not isinstance(event := await stream.next(), _Done):
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
            raise first
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            chunks(stream, first, usage_of if include_usage else None, ContentCutter(limits, tokens)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/v1/chat/completions", include_in_schema=False)
    def chat_needs_post() -> JSONResponse:
        return JSONResponse(
            error_body(405, "method_not_allowed", "Use POST /v1/chat/completions."),
            status_code=405,
            headers={"Allow": "POST"},
        )

    @router.api_route(
        "/v1/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    def unknown(path: str) -> JSONResponse:
        return JSONResponse(
            error_body(
                404,
                "not_found",
                f"No route /v1/{path[:80]}; Kilde serves /v1/chat/completions and /v1/models.",
            ),
            status_code=404,
        )

    return router


def model_card() -> dict:
    return {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "kilde"}


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
}


class OpenAIErrors:
    """ASGI middleware (outside `Gate`): an error response under /v1/ in Kilde's shape `{"error": code,
    "message": text}` is rewritten into OpenAI's, so the `openai` client raises its typed errors with
    Kilde's message (`BadRequestError`, `PermissionDeniedError`, `RateLimitError`, …). A request-validation
    error (422) becomes a 400, as OpenAI reports invalid parameters."""

    def __init__(self, app, prefix: str = "/v1/"):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body = bytearray()

        async def rewrite(message):
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            status, payload = rewritten(start["status"], bytes(body))
            headers = [
                (k, v)
                for k, v in start.get("headers", [])
                if k.lower() not in (b"content-length", b"content-type")
            ]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ]
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})

        await self.app(scope, receive, rewrite)


def rewritten(status: int, body: bytes) -> tuple[int, bytes]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return status, body  # already OpenAI's shape
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        code, message = data["error"], str(data.get("message") or data["error"])
    else:
        code, message = "error", body.decode("utf-8", "replace")[:500] or f"HTTP {status}"
    if status == 422:
        status = 400
    out = error_body(status, code, message)
    if isinstance(data, dict) and data.get("details"):
        out["error"]["param"] = data["details"][0].get("field")
    return status, json.dumps(out, ensure_ascii=False).encode()
