"""A request's body read whole, up to a limit, and handed on to the app: one reading for `ui.edge.BodyLimit`
(the body limit of every face), `ui.security.Gate` (Gradio bodies that carry a file reference) and
`ui.mcp_ids.ForbiddenIds` (MCP requests whose id is of a forbidden type)."""

from __future__ import annotations


async def read_body(receive, max_body: int | None = None) -> tuple[bytes | None, dict]:
    """Read the body's messages until the last one, or until they pass `max_body` bytes (None: a step behind
    the edge's limit, which has read the body already). Returns (body, the
    last message received): body is None once the body is over the limit; a last message that is not
    `http.request` (a disconnect) means the request ended early, and body is what came before it."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk = message.get("body", b"")
        size += len(chunk)
        if max_body is not None and size > max_body:
            return None, message
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), message


def replay(body: bytes, receive):
    """A `receive` that hands the app the body already read, as one message, and then the client's own."""
    sent = False

    async def again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
