"""Calls of the chat's events that name no event, or send too few inputs: a 4xx, before Gradio's routes.

The chat's page runs an event by POSTing `{"fn_index": n, "data": [...]}` to `…/gradio_api/run/predict` (or
`api/predict`, or `queue/join`), or names it by its API name (`…/run/chat`). Gradio answers an index no event has
(or a name, or no index at all) with a bare 500 and a traceback in the server's log, and a call with fewer inputs
than its event takes with a 500 `{"error": null}` and another traceback. `EventCalls` checks each such call against
the app's published config (`/config`'s `dependencies`, what Gradio's own clients read) and answers those with 404
`not_found` or 422 `invalid_request`; every other call goes to Gradio as it came.
"""

from __future__ import annotations

import json
import re

from pydantic import TypeAdapter, ValidationError

from ui.request_body import read_body, replay
from ui.security import Gate, Refusal, json_body

# `mount` is where the app is mounted ("" for the chat, "/widget" for the widget); `name` the event's API name.
CALL_PATH = re.compile(r"^(?P<mount>/widget)?/gradio_api/(?:(?:run|api)/(?P<name>[^/]+)|queue/join)/?$")
AN_INDEX = TypeAdapter(int)  # as Gradio reads `fn_index` (pydantic's lax int: 3, "3", 3.0 and true alike)


def event_of(dependencies: list[dict], call: dict, name: str | None) -> tuple[dict | None, Refusal | None]:
    """The event a call runs, or the refusal for a call that names none; (None, None) when Gradio answers it
    itself with a 4xx (a mistyped `fn_index`, a queue call with no index)."""
    if call.get("fn_index") is None:
        if name is None:
            return None, None
        event = next((d for d in dependencies if d.get("api_name") == name), None)
        if event is None:
            return None, Refusal(
                404, "not_found", f"No event is named {name[:80]!r}; name one, or give its fn_index."
            )
        return event, None
    try:
        index = AN_INDEX.validate_python(call["fn_index"])
    except ValidationError:
        return None, None
    event = next((d for d in dependencies if d.get("id") == index), None)
    if event is None or not event.get("backend_fn"):
        return None, Refusal(404, "not_found", f"No event of the server has fn_index {index}.")
    return event, None


def check_call(dependencies: list[dict], body: bytes, name: str | None) -> Refusal | None:
    """The refusal of a call that names no event or sends too few inputs; None for every other call, a body
    that is no JSON object among them (Gradio answers that itself with a 4xx)."""
    try:
        call = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(call, dict):
        return None
    event, refusal = event_of(dependencies, call, name)
    if event is None:
        return refusal
    data = call.get("data")
    takes = len(event.get("inputs", ()))
    if isinstance(data, list) and len(data) < takes:
        return Refusal(
            422, "invalid_request", f"data: event {event['id']} takes {takes} input values, got {len(data)}."
        )
    return None  # more values than the event takes: Gradio ignores the rest, as its own page may send them


class EventCalls:
    """Pure ASGI middleware, inside the Gate (which has read and size-limited every Gradio body). `apps` maps
    a mount path ("" or "/widget") to its `gr.Blocks`, whose config is read at each call."""

    def __init__(self, app, apps: dict):
        self.app = app
        self.apps = apps

    async def __call__(self, scope, receive, send):
        match = CALL_PATH.match(scope["path"]) if scope["type"] == "http" else None
        blocks = self.apps.get(match["mount"] or "") if match else None
        if blocks is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body, _last = await read_body(receive)  # whole: the Gate refused a body cut short or too large
        if body is not None:
            refusal = check_call(blocks.config.get("dependencies", []), body, match["name"])
            if refusal is not None:
                status, answer = json_body(refusal.status, refusal.error, refusal.message)
                await Gate.send_body(send, status, "application/json", answer, ())
                return
        await self.app(scope, replay(body or b"", receive), send)
