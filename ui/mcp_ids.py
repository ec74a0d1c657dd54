"""The ids `kilde mcp` takes, on both transports: a request whose id is of a type MCP forbids is answered.

MCP takes a string or a whole number as a request's id, never null. The SDK read a request with an id of another
type (null, true, 1.5, an object or a list) as a notification, which has no answer, so the client waited for
ever: over stdio it read no reply, over streamable HTTP it got 202 Accepted with an empty body. JSON-RPC 2.0
answers such a request with Invalid Request and id null: `ui.mcp_stdio.RequestLines` does so over stdio, and
`ForbiddenIds` over HTTP (`body_refusal`, which reads the body once), both with `forbids_id` and
`forbidden_id_error`.

Over HTTP `ForbiddenIds` also answers a body holding a lone surrogate escape ("\\ud83d", which a JavaScript client
writes for an emoji cut in half) as stdio does (`LONE_SURROGATE`, with the request's id): the SDK said "Parse
error: unexpected end of hex escape at line 1 column 125", id null.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from starlette.responses import Response

from assistant.core.surrogates import holds_lone_surrogate
from ui.request_body import read_body, replay

FORBIDDEN_ID = "Invalid request: the id must be a string or a whole number"
LONE_SURROGATE = (
    "Parse error: the request holds a lone surrogate escape (such as \\ud800, half of a UTF-16 pair), "
    "which is no character; send whole characters"
)


def request_id(value: Any) -> str | int | None:
    """The id of a request Python's json module read, where it has one a reply may carry."""
    if isinstance(value, dict):
        found = value.get("id")
        if isinstance(found, str) or (isinstance(found, int) and not isinstance(found, bool)):
            return found
    return None


def has_forbidden_id(message: str | bytes) -> bool:
    """Whether `message` (a stdio line, an HTTP body) is a request, a JSON object with a method, whose id is
    there but no string or whole number."""
    try:
        value = json.loads(message)
    except (ValueError, RecursionError):
        return False  # not JSON: the SDK refuses it, and each transport answers
    return forbids_id(value)


def forbids_id(value: Any) -> bool:
    """`has_forbidden_id` of a message already read."""
    return isinstance(value, dict) and "method" in value and "id" in value and request_id(value) is None


def forbidden_id_error() -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=FORBIDDEN_ID))


def body_refusal(body: bytes) -> JSONRPCError | None:
    """The answer to an HTTP body the SDK would misread, read once: a request with a forbidden id
    (`forbidden_id_error`), or JSON holding a lone surrogate (with the request's id); None for any other."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON, or nested too deep: the SDK refuses it
    if forbids_id(value):
        return forbidden_id_error()
    if holds_lone_surrogate(value):
        return JSONRPCError(
            jsonrpc="2.0", id=request_id(value), error=ErrorData(code=PARSE_ERROR, message=LONE_SURROGATE)
        )
    return None


class ForbiddenIds:
    """ASGI, before the SDK's streamable-HTTP app at `path`: a POST whose body is a request with a forbidden id,
    or one holding a lone surrogate, gets 400 and `body_refusal`'s error, as the SDK answers the other bodies it
    cannot read. The body is read here, within the edge's limit in front
    (`ui.edge.BodyLimit`), and handed on to the SDK otherwise."""

    def __init__(self, app, path: str):
        self.app, self.path = app, path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        body, _ = await read_body(receive)
        refusal = body_refusal(body)
        if refusal is None:
            await self.app(scope, replay(body, receive), send)
            return
        error = refusal.model_dump_json(by_alias=True, exclude_unset=True)
        await Response(error, status_code=400, media_type="application/json")(scope, receive, send)
