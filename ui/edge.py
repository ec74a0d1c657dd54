"""The outermost edge: request size, host names, forwarded headers and the routes Kilde does not offer.

`Limits` runs before CORS and `ui.security.Gate`, in front of `kilde serve` and of `kilde mcp --transport http`:
- more than MAX_HEADERS header lines or MAX_HEADER_BYTES of them gets 413 JSON;
- a body over the limit, declared or streamed, gets 413 from `BodyLimit` (Kilde's JSON, or the body its face
  gives: the MCP face's is a JSON-RPC error); the body is never held beyond the limit;
- the Host header (and X-Forwarded-Host from a trusted proxy) must name a trusted host: loopback names,
  the configured --host, and KILDE_TRUSTED_HOSTS ("*" trusts any), so DNS rebinding finds no answer;
- X-Forwarded-Proto and X-Forwarded-Host are honoured from KILDE_TRUSTED_PROXIES only (the request's scheme
  and host become the forwarded ones, so the chat's own origin matches) and removed from anyone else;
- Gradio's monitoring routes and file uploads are not served: Kilde takes no files.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.datastructures import Headers

from assistant.core.config import Settings
from ui.network import address_in
from ui.request_body import read_body, replay
from ui.security import json_body

MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 1 << 20
DRAIN_FACTOR = 16  # the rest of a refused body read and dropped, up to this many times the limit
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CLOSED_PATH = re.compile(r"(?:^|/)(?:monitoring(?:/|$)|gradio_api/upload\b|upload_progress\b)", re.IGNORECASE)
_FORWARDED = (
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-for",
    b"x-forwarded-port",
    b"forwarded",
)


def trusted_hosts(settings: Settings) -> frozenset[str]:
    names = {*LOOPBACK_NAMES, *(h.strip().lower() for h in settings.trusted_hosts if h.strip())}
    if settings.host not in ("0.0.0.0", "::", ""):
        names.add(settings.host.lower())
    return frozenset(names)


def host_name(value: str) -> str:
    """`example.org:7860` -> `example.org`; `[::1]:7860` -> `::1`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def too_large(max_body: int) -> bytes:
    return json_body(413, "too_large", f"The request body is larger than {max_body:,} bytes.")[1]


class BodyLimit:
    """The request body's limit, one step of `Limits`: a POST, PUT or PATCH whose body is over `max_body`,
    declared or streamed, gets 413 with `answer(max_body)` as its JSON body. The rest of a refused body, up to
    DRAIN_FACTOR times the limit, is read and dropped before the answer: a client still sending saw its
    connection reset instead of the 413."""

    def __init__(self, max_body: int = MAX_BODY_BYTES, answer: Callable[[int], bytes] = too_large):
        self.max_body, self.answer = max_body, answer

    async def admit(self, scope, receive, send):
        """The `receive` to hand the app (replaying a body read here), or None once the request is refused."""
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return receive
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await self.refuse(receive, send, drain=int(declared) <= DRAIN_FACTOR * self.max_body)
            return None
        if declared.isdigit() and "transfer-encoding" not in headers:
            # The server reads no more than a declared length, so the body is left to the app: a question
            # refused at once (the rate limit) never has its body read.
            return receive
        body, last = await read_body(receive, self.max_body)
        if body is None:
            await self.refuse(receive, send, drain=last.get("more_body", False))
            return None
        return replay(body, receive)

    async def refuse(self, receive, send, drain: bool) -> None:
        dropped = 0
        while drain and dropped <= DRAIN_FACTOR * self.max_body:
            message = await receive()
            dropped += len(message.get("body", b""))
            drain = message["type"] == "http.request" and message.get("more_body", False)
        await send_json(send, 413, self.answer(self.max_body))


class Limits:
    def __init__(self, app, settings: Settings, body: BodyLimit | None = None):
        self.app = app
        self.settings = settings
        self.body = body or BodyLimit()
        self.hosts = trusted_hosts(settings)
        self.any_host = "*" in self.hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = scope.get("headers") or []
        if len(raw) > MAX_HEADERS or sum(len(k) + len(v) for k, v in raw) > MAX_HEADER_BYTES:
            await self.refuse(scope, send, 413, "too_large", "The request headers are too large.")
            return
        scope = self.forwarded(scope)
        host = host_name(Headers(scope=scope).get("host", ""))
        if not self.any_host and host not in self.hosts:
            await self.refuse(
                scope,
                send,
                400,
                "host_not_allowed",
                "This host name is not served here. Add it to KILDE_TRUSTED_HOSTS on the Kilde server.",
            )
            return
        if CLOSED_PATH.search(scope["path"]):
            await self.refuse(
                scope, send, 404, "not_found", "Not served: Kilde takes no files and has no monitoring."
            )
            return
        receive = await self.body.admit(scope, receive, send)
        if receive is not None:
            await self.app(scope, receive, send)

    def forwarded(self, scope) -> dict:
        """Forwarded scheme and host from a trusted proxy become the request's own; from anyone else they go."""
        raw = scope.get("headers") or []
        if not any(k.lower() in _FORWARDED for k, _ in raw):
            return scope
        peer = (scope.get("client") or (None,))[0]
        if not address_in(peer, self.settings.trusted_proxies):
            return {**scope, "headers": [(k, v) for k, v in raw if k.lower() not in _FORWARDED]}
        headers = Headers(scope=scope)
        scope = dict(scope)
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            secure = proto == "https"
            scope["scheme"] = ("wss" if secure else "ws") if scope["type"] == "websocket" else proto
        forwarded_host = headers.get("x-forwarded-host", "").split(",")[0].strip()
        if forwarded_host:
            scope["headers"] = [(k, v) for k, v in raw if k.lower() != b"host"] + [
                (b"host", forwarded_host.encode("latin-1"))
            ]
        return scope

    async def refuse(self, scope, send, status: int, error: str, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_json(send, *json_body(status, error, message))


async def send_json(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
