"""OpenAI's error shape `{"error": {"message", "type", "param", "code"}}` for everything under /v1/.

`error_body` builds it; `OpenAIErrors` rewrites every error response under /v1/ (the Gate's refusals
included) into it, and answers an unhandled exception there with a 500 in it, so the `openai` client raises its
typed errors with Kilde's message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from assistant.core.errors import KildeError
from ui.api import status_of

INTERNAL_ERROR = "Internal error; the server log has the details."  # all a client is told of a bug
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


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


def status_of_error(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, KildeError):
        return status_of(exc)
    return 500, "internal_error"


class OpenAIErrors:
    """ASGI middleware (outside `Gate`): an error response under /v1/ in Kilde's shape `{"error": code,
    "message": text}` is rewritten into OpenAI's, so the `openai` client raises its typed errors with
    Kilde's message (`BadRequestError`, `PermissionDeniedError`, `RateLimitError`, …). A request-validation
    error (422) becomes a 400, as OpenAI reports invalid parameters.

    An unhandled exception passes through here on its way to Starlette's outermost error middleware, whose
    answer (ui/server.py `internal_error`) would not: so it is answered here, with a 500 in OpenAI's shape
    that says no more than Kilde's, and raised on, to be logged there as any other."""

    def __init__(self, app, prefix: str = "/v1/", headers: Sequence[tuple[str, str]] = ()):
        self.app = app
        self.prefix = prefix
        # the security headers, which the Gate inside adds to every other answer (`security.security_headers`)
        self.headers = [(k.encode(), v.encode()) for k, v in headers]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body = bytearray()
        sent = False  # whether a response has begun to go out

        async def rewrite(message):
            nonlocal start, sent
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    sent = True
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
            sent = True
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})

        try:
            await self.app(scope, receive, rewrite)
        except Exception:
            if not sent:  # once the headers are out, the client can only be cut off
                payload = json.dumps(error_body(500, "internal_error", INTERNAL_ERROR)).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *self.headers,
                ]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": payload})
            raise


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
