"""The request params a client sends wrong, named in the error, on both transports of `kilde mcp`.

The SDK answered every request whose params do not fit the method's shape (a tool call whose `arguments` is a
string, a prompt argument sent as a number, a resource's `uri` as a number) with `-32602` "Invalid request
parameters" and an empty `data`, naming nothing; and it took a list's `cursor` it never gave out as no cursor,
answering the first page again. The specification (2025-11-25, utilities/pagination) says: "Invalid cursors SHOULD
result in an error with code -32602 (Invalid params)". `NamedParams` says which param, and what it needs, and
a list that comes on one page refuses every cursor (`resources/list` pages: `ui.mcp_pages.Cursors`). A request
sent before `initialize` got the same bare words, as if its params were at fault; it is told to initialize first.
"""

from __future__ import annotations

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
# resources/list pages (`ui.mcp_pages`); these lists come whole, so no cursor is one the server gave.
ONE_PAGE = frozenset({"tools/list", "prompts/list", "resources/templates/list"})
NO_CURSOR = (
    "Invalid params: params.cursor: this list comes on one page, with no nextCursor, so no cursor is one the "
    "server gave; send the request without one"
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
