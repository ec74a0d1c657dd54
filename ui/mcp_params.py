"""The request params a client sends wrong, named in the error, on both transports of `kilde mcp`.

The SDK answered every request whose params do not fit the method's shape (a tool call whose `arguments` is a
string, a prompt argument sent as a number, a resource's `uri` as a number) with `-32602` "Invalid request
parameters" and an empty `data`, naming nothing; and it took a list's `cursor` it never gave out as no cursor,
answering the first page again. The specification (2025-11-25, utilities/pagination) says: "Invalid cursors SHOULD
result in an error with code -32602 (Invalid params)". `NamedParams` says which param, and what it needs, and
`Cursors` gives `resources/list` its `nextCursor` and refuses one no server of its index gave. A request sent
before `initialize` got the same bare words, as if its params were at fault; it is told to initialize first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

from mcp import MCPError
from mcp.types import INVALID_PARAMS, INVALID_REQUEST
from pydantic import ValidationError

# What an argument of the wrong type needs, in the words of Kilde's other messages ("query: the query is empty").
ARGUMENT_PROBLEMS = {
    "missing": "required",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "dict_type": "must be an object",
    "extra_forbidden": "unknown argument",
}
# resources/list pages (`Cursors`); these lists come whole, so no cursor is one the server gave.
ONE_PAGE = frozenset({"tools/list", "prompts/list", "resources/templates/list"})
NO_CURSOR = (
    "Invalid params: params.cursor: this list comes on one page, with no nextCursor, so no cursor is one the "
    "server gave; send the request without one"
)
NOT_GIVEN = (
    "Invalid params: params.cursor: not a nextCursor this server gave; send the nextCursor of the page before "
    "as it came, or no cursor for the first page"
)


# The SDK's words for a request before `initialize`; its params' faults reach `NamedParams` as ValidationError.
SDK_BEFORE_INITIALIZE = "Invalid request parameters"
NOT_INITIALIZED = (
    "Invalid request: the session is not initialized; send initialize, then notifications/initialized, first"
)


def argument_problems(error: ValidationError) -> str:
    """'query: must be a string; k: must be a whole number': each field and what it needs, never the value
    sent (pydantic's own text repeats it, with a link to its documentation)."""
    problems = [
        f"{'.'.join(str(part) for part in err['loc']) or 'arguments'}: "
        f"{ARGUMENT_PROBLEMS.get(err['type'], err['msg'])}"
        for err in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    return "; ".join(problems[:5])


class Cursors:
    """The `nextCursor` of `resources/list`: the sort key (date, id) of the last article listed, so the next page
    starts after it even when articles are added or deleted meanwhile (an offset would skip or repeat some),
    with a keyed checksum. The key is drawn from the index's place (`of_index`): every server over the same index
    (a restarted one, another process behind the same address) takes the cursors the others gave, and a rebuilt
    index keeps them, as a place in the newest-first list still means the same. A cursor no server of this index
    gave (garbage, altered, another archive's) is refused. The key is no secret and needs to be none: a cursor
    is only ever a place in the list, never an article, so one crafted to pass is a place as well; its body is
    read strictly all the same."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    @classmethod
    def of_index(cls, place: str) -> Cursors:
        """`place`: what names the index the server lists, the same for every process serving it (the data
        directory's resolved path, or the Chroma server's address, with the collection)."""
        return cls(hashlib.sha256(f"kilde resources/list cursor\0{place}".encode()).digest())

    def give(self, position: tuple[str, str]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()
        return f"{body}.{self.signature(body)}"

    def position(self, cursor: str) -> tuple[str, str]:
        body, _, signature = cursor.rpartition(".")
        if not cursor.isascii() or not hmac.compare_digest(signature, self.signature(body)):
            raise MCPError(INVALID_PARAMS, NOT_GIVEN)
        try:
            place = json.loads(base64.urlsafe_b64decode(body))
        except (ValueError, RecursionError):  # binascii.Error and JSON's errors are ValueErrors
            place = None
        if not (isinstance(place, list) and len(place) == 2 and all(isinstance(x, str) for x in place)):
            raise MCPError(INVALID_PARAMS, NOT_GIVEN)
        return place[0], place[1]

    def signature(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()


class NamedParams:
    """Server middleware (the SDK's `Server.middleware`): a request whose params the SDK refuses gets `-32602`
    naming them ("Invalid params: params.arguments.question: must be a string"); a cursor on a list that comes
    on one page is refused, as the server gives none there (`resources/list` checks its own, `Cursors`); a
    request before `initialize` is told to initialize first. Notifications pass as they are: nothing answers
    them."""

    async def __call__(self, ctx, call_next):
        if ctx.request_id is None:
            return await call_next(ctx)
        params = ctx.params if isinstance(ctx.params, Mapping) else {}
        if ctx.method in ONE_PAGE and params.get("cursor") is not None:
            raise MCPError(INVALID_PARAMS, NO_CURSOR)
        try:
            return await call_next(ctx)
        except ValidationError as exc:
            raise MCPError(INVALID_PARAMS, f"Invalid params: {argument_problems(exc)}") from None
        except MCPError as exc:
            if (exc.error.code, exc.error.message) != (INVALID_PARAMS, SDK_BEFORE_INITIALIZE):
                raise
            raise MCPError(INVALID_REQUEST, NOT_INITIALIZED) from None
