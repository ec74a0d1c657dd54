"""`kilde mcp` over stdio: every line a client sends is answered, the lines the SDK cannot read included.

The SDK's stdio transport dropped such a line without a word, and the client waited for its answer for ever: a
string with a lone surrogate escape ("\\ud83d", which a JavaScript client writes for an emoji cut in half), a
number of thousands of digits, JSON nested too deep, a line that is not JSON, or JSON that is no JSON-RPC 2.0
message. Over HTTP the SDK answers those with an error whose id is null; here the error carries the request's
id wherever Python's json module can read one, so the client can tell which request failed.

A request whose id is of a type MCP forbids (null, true, 1.5, an object or a list: MCP takes a string or a whole
number) the SDK read as a notification, which has no answer; `RequestLines` answers it, as JSON-RPC 2.0 says,
with Invalid Request and id null (the check and the answer are ui/mcp_ids.py's, which HTTP shares).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator

import anyio
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from assistant.core.surrogates import holds_lone_surrogate
from ui.mcp_ids import LONE_SURROGATE, forbidden_id_error, has_forbidden_id, request_id

NOT_JSON_RPC = (
    'Invalid request: not a JSON-RPC 2.0 message ({"jsonrpc": "2.0", "id": a string or a whole number, '
    '"method": a string, "params": an object})'
)


class RequestLines:
    """stdin's lines for the SDK's reader, less each request whose id MCP forbids: that one is answered on the
    write stream (`answer_on`), which the transport opens after it starts reading."""

    def __init__(self, lines: AsyncIterable[str]):
        self._lines = lines
        self._write = None
        self._ready = anyio.Event()

    def answer_on(self, write) -> None:
        self._write = write
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._checked()

    async def _checked(self) -> AsyncIterator[str]:
        async for line in self._lines:
            if not has_forbidden_id(line):
                yield line
                continue
            await self._ready.wait()
            await self._write.send(SessionMessage(forbidden_id_error()))


def reply_to_unreadable(problem: Exception) -> JSONRPCError:
    """The error that answers a line the transport could not read (`problem`: what it reported)."""
    errors = problem.errors() if isinstance(problem, ValidationError) else []
    first = errors[0] if errors else {}
    if first.get("type") != "json_invalid":  # JSON, but no JSON-RPC message: the id where an error quotes it
        found = next(
            (request_id(e.get("input")) for e in errors if request_id(e.get("input")) is not None), None
        )
        return JSONRPCError(
            jsonrpc="2.0", id=found, error=ErrorData(code=INVALID_REQUEST, message=NOT_JSON_RPC)
        )
    line = first.get("input")
    reason = str(first.get("ctx", {}).get("error") or "not JSON")
    try:
        parsed = json.loads(line) if isinstance(line, str) else None
    except (ValueError, RecursionError):
        parsed = None
    message = f"Parse error: {reason}"
    if parsed is not None:
        try:
            if holds_lone_surrogate(parsed):
                message = LONE_SURROGATE
        except (RecursionError, ValueError):
            pass
    return JSONRPCError(
        jsonrpc="2.0", id=request_id(parsed), error=ErrorData(code=PARSE_ERROR, message=message)
    )


class AnsweredLines:
    """The transport's read stream, each item it could not parse answered on `write` and left out."""

    def __init__(self, inner, write):
        self._inner, self._write = inner, write

    @property
    def last_context(self):
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            await self._write.send(SessionMessage(reply_to_unreadable(item)))

    def __aiter__(self) -> AnsweredLines:
        return self

    async def __anext__(self) -> SessionMessage:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> AnsweredLines:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.aclose()
