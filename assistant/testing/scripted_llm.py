"""A scripted OpenAI-compatible server: a real HTTP server on 127.0.0.1, shipped as test code.

It speaks the parts of OpenAI's API that Kilde uses:

* `POST /v1/chat/completions`, streaming (server-sent events, `data: {...}` chunks and
  `data: [DONE]`, over chunked transfer encoding) and non-streaming;
* `POST /v1/embeddings`, with deterministic hashed bag-of-words vectors.

Each chat request takes the next `Reply` from a queue, so a test scripts exactly what the "model"
says, and can make it misbehave: an HTTP error status (429 with `Retry-After`, 500, 401), a delay
before the reply or a stall mid-stream (beyond the client's timeout), a stream cut off without
its end, a malformed chunk, an error event mid-stream, or HTTP 200 and then an empty stream. Every
request is recorded (path, headers, JSON body), and how each stream ended (`outcomes`).

Server options reproduce what local servers (llama.cpp, llama-cpp-python, vLLM, Ollama) do:

* `n_ctx` with a `tokenizer`: a context window. A prompt longer than it is refused (`overflow="error"`,
  HTTP 400 as llama.cpp's server says it) or answered with an empty stream (`overflow="empty"`, as
  llama-cpp-python's server did); a reply that would run past it stops with `finish_reason: "length"`.
* `tokenize_api="llama.cpp"` (`POST /tokenize {"content"}` -> `{"tokens"}`, and `GET /props` with
  `n_ctx`) or `"vllm"` (`POST /tokenize {"model", "prompt"}` -> `{"count", "tokens"}`).
* `honour_max_completion_tokens=False`: only `max_tokens` limits the reply (llama.cpp, older vLLM).
* `interrupt=True`: one slot; a new chat request ends the stream in progress (`[DONE]`, no finish
  reason), as llama-cpp-python's server does by default (`--interrupt_requests True`).
* `models`: what `GET /v1/models` lists; any model name is accepted in a chat request.
* Only paths under `/v1/` exist: a base URL without `/v1` gets HTTP 404.

    with ScriptedLLMServer() as server:
        server.script(Reply("Article 4 commits each side to help [1]."))
        settings = server.settings_for(settings)  # the backend, its URL and model named
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    """One scripted reply to one chat request."""

    text: str = ""
    chunks: list[str] | None = None  # how the text is streamed; default: word by word
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # error message for a non-200 status
    delay_s: float = 0.0  # before the response starts (a slow server)
    stall_after: int | None = None  # stream this many chunks, then stall for stall_s
    stall_s: float = 0.0
    wake: threading.Event | None = None  # set, it ends the stall early and the stream goes on
    stalling: threading.Event | None = None  # set by the server once the stall begins, for a test to await
    cut_after: int | None = None  # stream this many chunks, then drop the connection (no [DONE])
    malformed_after: int | None = None  # stream this many chunks, then send a chunk that is not JSON
    error_after: int | None = None  # stream this many chunks, then an error event (`error`) and the end
    finish_reason: str = "stop"
    empty: bool = False  # HTTP 200, then a stream with no chunk in it (only `[DONE]`)
    chunk_delay_s: float = 0.0  # between streamed chunks: the model's writing speed
    # HTTP 200 with this (content type, body) whatever was asked: a proxy's HTML page, a broken JSON body
    raw: tuple[str, str] | None = None
    unstreamed: bool = False  # a streaming request answered with one whole chat.completion

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\S+\s*|\s+", self.text)

    # Misbehaviour, by name.
    @classmethod
    def rate_limited(cls, retry_after: float = 1) -> Reply:
        return cls(status=429, headers={"Retry-After": f"{retry_after:g}"}, error="Rate limit reached")

    @classmethod
    def server_error(cls) -> Reply:
        return cls(status=500, error="The server had an error while processing your request")

    @classmethod
    def refused(cls, status: int = 400, message: str = "Request refused") -> Reply:
        return cls(status=status, error=message)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]
    at: float


def hashed_embedding(text: str, dim: int = 64) -> list[float]:
    vector = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha1(word.encode()).digest()
        vector[digest[0] % dim] += 1.0 if digest[1] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.requests.append(
            Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, {}, time.monotonic())
        )
        if owner.default.status in (401, 403):  # a server refusing the key refuses every route
            return self._json(
                owner.default.status, {"error": {"message": owner.default.error, "type": "auth"}}
            )
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "scripted"} for m in owner.models]
            return self._json(200, {"object": "list", "data": data})
        if self.path == "/props" and owner.tokenize_api == "llama.cpp" and owner.n_ctx:
            return self._json(200, {"default_generation_settings": {"n_ctx": owner.n_ctx}})
        return self._json(
            404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._json(
                400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}
            )
        owner = self.server.owner
        owner.requests.append(
            Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
        )
        if self.path == "/tokenize" and owner.tokenize_api:
            return self._tokenize(body)
        if self.path.rstrip("/") == "/v1/embeddings":
            return self._embeddings(body)
        if self.path.rstrip("/") == "/v1/chat/completions":
            return self._chat(body, owner.next_reply())
        return self._json(
            404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
        )

    # -- responses --------------------------------------------------------------------------------

    def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _embeddings(self, body: dict) -> None:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_embedding(str(text))}
            for i, text in enumerate(inputs)
        ]
        self._json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "scripted"),
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            },
        )

    def _tokenize(self, body: dict) -> None:
        owner = self.server.owner
        field_name = "content" if owner.tokenize_api == "llama.cpp" else "prompt"
        if not isinstance(body.get(field_name), str):
            return self._json(
                400, {"error": {"message": f"'{field_name}' is required", "type": "invalid_request"}}
            )
        tokens = owner.tokenizer(body[field_name])
        if owner.tokenize_api == "llama.cpp":
            return self._json(200, {"tokens": tokens})
        return self._json(200, {"count": len(tokens), "max_model_len": owner.n_ctx, "tokens": tokens})

    def _chat(self, body: dict, reply: Reply) -> None:
        owner = self.server.owner
        generation = owner.begin_generation()
        if reply.delay_s and owner.stopping.wait(reply.delay_s):
            return
        pieces = reply.pieces()
        finish_reason = reply.finish_reason
        if owner.tokenizer is not None:
            prompt = owner.prompt_tokens(body.get("messages") or [])
            if owner.n_ctx and prompt > owner.n_ctx:
                owner.outcomes.append(f"overflow-{owner.overflow}")
                if owner.overflow == "error":
                    return self._json(
                        400,
                        {
                            "error": {
                                "code": 400,
                                "type": "exceed_context_size_error",
                                "n_prompt_tokens": prompt,
                                "n_ctx": owner.n_ctx,
                                "message": "the request exceeds the available context size, try increasing it",
                            }
                        },
                    )
                reply = Reply(empty=True)
            limits = [body.get("max_tokens")]
            if owner.honour_max_completion_tokens:
                limits.append(body.get("max_completion_tokens"))
            if owner.n_ctx:
                limits.append(owner.n_ctx - prompt)
            allowed = min((n for n in limits if isinstance(n, int)), default=None)
            if allowed is not None:
                kept: list[str] = []
                for piece in pieces:
                    if len(owner.tokenizer("".join([*kept, piece]))) > allowed:
                        finish_reason = "length"
                        break
                    kept.append(piece)
                pieces = kept
        owner.generated.append("".join(pieces))
        if reply.status != 200:
            kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(reply.status, "server_error")
            return self._json(
                reply.status,
                {"error": {"message": reply.error or "error", "type": kind, "code": kind}},
                reply.headers,
            )
        if reply.raw is not None:
            content_type, raw = reply.raw
            data = raw.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return None
        model = body.get("model", "scripted")
        if not body.get("stream") or reply.unstreamed:
            return self._json(
                200,
                {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(pieces)},
                            "finish_reason": finish_reason,
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(delta: dict, finish: str | None = None) -> str:
            return json.dumps(
                {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        try:
            if reply.empty:
                self._event("[DONE]")
                self._send(b"")
                owner.outcomes.append("empty")
                return
            self._event(chunk({"role": "assistant", "content": ""}))
            for i, piece in enumerate(pieces):
                if owner.interrupt and owner.generation != generation:  # another request took the slot
                    self._event("[DONE]")
                    self._send(b"")
                    owner.outcomes.append("interrupted")
                    return
                if reply.chunk_delay_s and i and owner.stopping.wait(reply.chunk_delay_s):
                    return
                if reply.cut_after is not None and i >= reply.cut_after:
                    self.wfile.flush()
                    self.connection.shutdown(2)  # no final chunk, no [DONE]: the stream is cut
                    return
                if reply.error_after is not None and i == reply.error_after:
                    # as vLLM and llama.cpp report a failure once the stream has begun
                    self._event(json.dumps({"error": {"message": reply.error or "error", "code": 500}}))
                    self._send(b"")
                    owner.outcomes.append("error")
                    return
                if reply.malformed_after is not None and i == reply.malformed_after:
                    self._send(
                        b'data: {"id": "chatcmpl-scripted", "choices": [{"delta": {"content": "oops\n\n'
                    )
                if reply.stall_after is not None and i == reply.stall_after:
                    if reply.stalling is not None:
                        reply.stalling.set()
                    (reply.wake or owner.stopping).wait(reply.stall_s)
                    if owner.stopping.is_set():
                        return
                self._event(chunk({"content": piece}))
            self._event(chunk({}, finish_reason))
            self._event("[DONE]")
            self._send(b"")  # the zero-length chunk ends the body
            owner.outcomes.append("done")
        except (BrokenPipeError, ConnectionResetError, OSError):
            owner.outcomes.append("aborted")  # the client gave up (its deadline) and closed the connection

    def _event(self, data: str) -> None:
        self._send(f"data: {data}\n\n".encode())

    def _send(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ScriptedLLMServer


class ScriptedLLMServer:
    """Start with `with ScriptedLLMServer() as server:` or `.start()` / `.stop()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tokenizer=None,
        n_ctx: int | None = None,
        overflow: str = "error",
        tokenize_api: str | None = None,
        honour_max_completion_tokens: bool = True,
        interrupt: bool = False,
        models: tuple[str, ...] = ("scripted-7b",),
    ):
        """`tokenizer(text) -> list[int]` is the model's own (needed for `n_ctx` and `tokenize_api`)."""
        self._server = _Server((host, port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.default: Reply = Reply.refused(500, "no scripted reply left")
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self.tokenizer = tokenizer
        self.n_ctx = n_ctx
        self.overflow = overflow
        self.tokenize_api = tokenize_api
        self.honour_max_completion_tokens = honour_max_completion_tokens
        self.interrupt = interrupt
        self.models = models
        self.generation = 0
        self.outcomes: list[str] = []  # per stream: done, empty, interrupted, aborted, overflow-…
        self.generated: list[str] = []  # per chat request: the text it was allowed to generate

    def begin_generation(self) -> int:
        with self._lock:
            self.generation += 1
            return self.generation

    def prompt_tokens(self, messages: list[dict]) -> int:
        """As a chat template frames them: a few tokens around each message, and the assistant's cue."""
        return sum(len(self.tokenizer(str(m.get("content") or ""))) + 6 for m in messages) + 3

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def settings_for(self, settings: Any, **changes: Any) -> Any:
        """`settings` (Kilde's `Settings`) with this server as the generative backend's model server, its first
        model named, and `changes` on top (each test's own timeouts and retries)."""
        return settings.replace(
            llm_backend="openai-compatible", llm_base_url=self.url, llm_model=self.models[0], **changes
        )

    def script(self, *replies: Reply | str) -> ScriptedLLMServer:
        with self._lock:
            self._replies.extend(Reply(r) if isinstance(r, str) else r for r in replies)
        return self

    def next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else self.default

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
        self.requests.clear()
        self.outcomes.clear()
        self.generated.clear()

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def start(self) -> ScriptedLLMServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
