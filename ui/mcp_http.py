"""`kilde mcp --transport http`: the request body's limit, answered in JSON-RPC.

The SDK refused a body over its own 4 MiB with a plain-text 413 ("Request body too large"), which no JSON-RPC
client reads as an error, and took four times what `kilde serve` takes. `BodyLimit` holds Kilde's limit
(`ui.edge.MAX_BODY_BYTES`, declared or streamed) and answers 413 with a JSON-RPC error whose id is null, as the
SDK answers the other requests it cannot read; the body is never held beyond the limit. The rest of a refused
body, up to DRAIN_FACTOR times the limit, is read and dropped before the answer: a client still sending saw its
connection reset instead of the error.
"""

from __future__ import annotations

from mcp.types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.datastructures import Headers

from ui.edge import MAX_BODY_BYTES, replay

DRAIN_FACTOR = 16


def too_large(max_body: int) -> bytes:
    error = ErrorData(
        code=INVALID_REQUEST, message=f"Invalid request: the request body is larger than {max_body:,} bytes"
    )
    return (
        JSONRPCError(jsonrpc="2.0", id=None, error=error)
        .model_dump_json(by_alias=True, exclude_unset=True)
        .encode()
    )


class BodyLimit:
    def __init__(self, app, max_body_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_body = app, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await self.refuse(receive, send, drain=int(declared) <= DRAIN_FACTOR * self.max_body)
            return
        if declared.isdigit() and "transfer-encoding" not in headers:
            # The server reads no more than a declared length.
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body:
                await self.refuse(receive, send, drain=message.get("more_body", False))
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)

    async def refuse(self, receive, send, drain: bool) -> None:
        dropped = 0
        while drain and dropped <= DRAIN_FACTOR * self.max_body:
            message = await receive()
            dropped += len(message.get("body", b""))
            drain = message["type"] == "http.request" and message.get("more_body", False)
        body = too_large(self.max_body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
