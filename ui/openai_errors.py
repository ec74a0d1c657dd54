"""OpenAI's error shape `{"error": {"message", "type", "param", "code"}}` for everything under /v1/.

`error_body` builds it; `OpenAIErrors` rewrites every error response under /v1/ (the Gate's refusals
included) into it, and answers an unhandled exception there with a 500 in it, so the `openai` client raises its
typed errors with Kilde's message; a 500 says `x-should-retry: false` (`no_retry`), so the client does not repeat
it. `invalid_body` says what is wrong with a body that does not validate as OpenAI does: one error, naming the
parameter by its path in the body (`messages[0].content`), with OpenAI's code for the fault (`invalid_type`,
`missing_required_parameter`, `decimal_above_max_value`, `invalid_value`, …), so a client that branches on `code`
reads Kilde's refusals as it reads OpenAI's. `InvalidParameter` is a refusal that the face's own checks
(ui/openai_schema.py) raise with such a code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from assistant.core.errors import BadInputError, KildeError
from ui.api import NON_FINITE, NOT_JSON, NotFound, status_of

PREFIX = "/v1/"  # where OpenAI's shape is spoken
INTERNAL_ERROR = "Internal error; the server log has the details."  # all a client is told of a bug
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "requests",  # OpenAI's type for a limit on requests per minute ("tokens" for one on tokens)
    502: "api_error",
    503: "api_error",
}
# Kilde's codes that OpenAI's API answers with a code of its own for the same fault: over a limit of requests
# per minute, `rate_limit_exceeded`; a route it does not serve, none ("Invalid URL (POST /v1/…)"); no turn free
# for the question (`busy`, ui/fairness.py), `server_is_overloaded`, OpenAI's 503 for a model without capacity.
# The rest of Kilde's codes (`method_not_allowed`, `too_large`, `not_ready`, the Gate's) have no recorded OpenAI
# answer, and stay.
OPENAI_CODES: dict[str, str | None] = {
    "rate_limited": "rate_limit_exceeded",
    "not_found": None,
    "busy": "server_is_overloaded",
}
# The type OpenAI's API sends beside such a code, where it is not the status's (`ERROR_TYPES`).
OPENAI_TYPES = {"busy": "service_unavailable_error"}


def error_body(status: int, code: str | None, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": OPENAI_TYPES.get(code or "")
            or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": OPENAI_CODES.get(code, code) if code is not None else None,
        }
    }


class InvalidParameter(BadInputError):
    """A parameter's value refused as OpenAI's API refuses it: `message` names the parameter in OpenAI's words,
    and `openai_code` is OpenAI's code for the fault, None where OpenAI sends none (`stream_options` without
    `stream`)."""

    def __init__(self, param: str, message: str, openai_code: str | None):
        KildeError.__init__(self, message)  # no "param: " before it: the message names it
        self.source, self.reason, self.openai_code = param, message, openai_code


class ModelNotFound(NotFound):
    """The request names a model this server does not have."""


def status_of_error(exc: Exception) -> tuple[int, str | None]:
    """The status and OpenAI's code for an error raised under /v1/. Bad input is `invalid_value` unless a check
    said which fault it is: OpenAI's codes name faults, Kilde's `bad_request` would match none of them."""
    if isinstance(exc, InvalidParameter):
        return 400, exc.openai_code
    if isinstance(exc, ModelNotFound):
        return 404, "model_not_found"
    if not isinstance(exc, KildeError):
        return 500, "internal_error"
    status, code = status_of(exc)
    return status, "invalid_value" if code == "bad_request" else code


class OpenAIErrors:
    """ASGI middleware (outside `Gate`): an error response under /v1/ in Kilde's shape `{"error": code,
    "message": text}` is rewritten into OpenAI's, so the `openai` client raises its typed errors with
    Kilde's message (`BadRequestError`, `PermissionDeniedError`, `RateLimitError`, …). A request-validation
    error (422) becomes a 400, as OpenAI reports invalid parameters.

    An unhandled exception passes through here on its way to Starlette's outermost error middleware, whose
    answer (ui/server.py `internal_error`) would not: so it is answered here, with a 500 in OpenAI's shape
    that says no more than Kilde's, and raised on, to be logged there as any other."""

    def __init__(self, app, prefix: str = PREFIX, headers: Sequence[tuple[str, str]] = ()):
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
                *no_retry(status),
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
                    *no_retry(500),
                    *self.headers,
                ]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": payload})
            raise


def no_retry(status: int) -> list[tuple[bytes, bytes]]:
    """`x-should-retry: false` on a 500, a bug in Kilde (or a setting it cannot run with) that the same request
    meets again: the `openai` client honours the header (`_should_retry`) and raises at once, where it retries any
    other 5xx, twice by default. A 503 (busy, not ready) and a 502 (a model server failing) stay retryable."""
    return [(b"x-should-retry", b"false")] if status == 500 else []


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


# What a pydantic error of each type expected, in the words of OpenAI's own "Invalid type for …" errors.
EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def json_type(value: Any) -> str:
    """What a value parsed from JSON is, as OpenAI names it ("but got a string instead")."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: True is an int in Python, not in JSON
        return "a boolean"
    for kind, name in ((int, "an integer"), (float, "a number"), (str, "a string"), (list, "an array")):
        if isinstance(value, kind):
            return name
    return "an object"


def path_in(body: Any, loc: Sequence[str | int], missing: bool) -> tuple[str | int, ...]:
    """The keys and indexes of a pydantic error's `loc` that are in the body sent. The rest name a union's
    members ('str', 'list[ContentPart]' in `messages.0.content.str`) and are left out; the last, for a
    `missing` error, is the key not sent."""
    path: list[str | int] = []
    value = body
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    for n, part in enumerate(parts):
        key = isinstance(value, Mapping) and isinstance(part, str) and part in value
        index = isinstance(value, list) and type(part) is int and 0 <= part < len(value)
        if key or index:
            value = value[part]
        elif not (missing and n == len(parts) - 1):
            continue
        path.append(part)
    return tuple(path)


def tag_key(error: Mapping[str, Any]) -> str:
    """The key that tells a tagged union's members apart (`type`), from pydantic's `'type'`."""
    return str(error["ctx"]["discriminator"]).strip("'")


# The tags pydantic names a tagged union's member by: the `type` of a tool or of an earlier tool call
# (ui/openai_tools.py). No other item of a list in the body holds a field of these names.
TAGS = ("function", "custom")


def untagged(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """pydantic's `loc` without the tags it names a tagged union's member by: in an error inside a tool or a call,
    the member's type comes after its index, then the field at fault (`tools.0.function.function.name`,
    `messages.1.tool_calls.0.function.id`). Left in, the tag would be read as the item's key where the item holds
    one of its name (`"function": …`), and the field as a key inside it."""
    parts = list(loc)
    return tuple(
        part
        for n, part in enumerate(parts)
        if not (0 < n < len(parts) - 1 and type(parts[n - 1]) is int and part in TAGS)
    )


def location(body: Any, error: Mapping[str, Any]) -> tuple[str | int, ...]:
    """Where in the body an error is (`path_in`). A tagged union's missing or unknown tag is its tag's fault,
    `tools[0].type`, not the tool's."""
    path = path_in(body, untagged(error["loc"]), error["type"] == "missing")
    return (*path, tag_key(error)) if error["type"] in ("union_tag_not_found", "union_tag_invalid") else path


def param_of(path: Sequence[str | int]) -> str | None:
    """OpenAI's name for a path: `messages[0].content`, `stream_options.include_usage`."""
    text = ""
    for part in path:
        text += f"[{part}]" if type(part) is int else (f".{part}" if text else str(part))
    return text or None


def expected_of(error: Mapping[str, Any]) -> str | None:
    """What a type error expected; None for an error of another kind (a value out of range, a key missing)."""
    if error["type"] == "literal_error" and not isinstance(error.get("input"), str):
        return f"one of {error['ctx']['expected']}"
    return EXPECTED.get(error["type"])


def one_of(values: Sequence[str]) -> str:
    """OpenAI's list of supported values: 'none', 'auto', and 'required'."""
    quoted = [repr(v) for v in values]
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1] if len(quoted) > 2 else " and ".join(quoted)


def number(value: Any) -> str:
    """A number as OpenAI's messages write it: 2, not 2.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


# A bound's error: OpenAI's words for the side it failed on, the comparison, and the key of pydantic's `ctx`.
BOUNDS = {
    "greater_than_equal": ("below_min", "below minimum", ">=", "ge"),
    "greater_than": ("below_min", "below minimum", ">", "gt"),
    "less_than_equal": ("above_max", "above maximum", "<=", "le"),
    "less_than": ("above_max", "above maximum", "<", "lt"),
}


def fault(error: Mapping[str, Any], name: str) -> tuple[str, str]:
    """OpenAI's code and message for a value of the right type that is refused, or a parameter missing."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind in ("missing", "union_tag_not_found"):
        return "missing_required_parameter", f"Missing required parameter: '{name}'."
    if kind == "union_tag_invalid":  # a tool's `type`: the error's input is the tool
        tag = value.get(tag_key(error))
        if not isinstance(tag, str):
            return (
                "invalid_type",
                f"Invalid type for '{name}': expected a string, but got {json_type(tag)} instead.",
            )
        supported = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        return "invalid_value", (
            f"Invalid value for '{name}': {tag[:80]!r}. Supported values are: {one_of(supported)}."
        )
    if kind == "string_pattern_mismatch":  # OpenAI's words for a tool's name
        return "invalid_value", (
            f"Invalid '{name}': string does not match pattern. Expected a string that matches the pattern "
            f"'{ctx['pattern']}'."
        )
    if kind in BOUNDS:
        side, words, compare, key = BOUNDS[kind]
        # The declared bound's type is the parameter's: `temperature`'s 2.0 makes 3 a decimal, as OpenAI says.
        numeric = "decimal" if isinstance(ctx[key], float) else "integer"
        return f"{numeric}_{side}_value", (
            f"Invalid '{name}': {numeric} {words} value. Expected a value {compare} {number(ctx[key])}, "
            f"but got {number(value)} instead."
        )
    if kind == "literal_error":  # of a string: another type is `invalid_type` (`expected_of`)
        supported = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return "invalid_value", (
            f"Invalid value for '{name}': {str(value)[:80]!r}. Supported values are: {one_of(supported)}."
        )
    if kind == "too_short" and isinstance(value, list) and not value:
        return "empty_array", (
            f"Invalid '{name}': empty array. Expected an array with minimum length {ctx['min_length']}, "
            "but got an empty array instead."
        )
    if kind == "too_long" and isinstance(value, list):
        return "array_above_max_length", (
            f"Invalid '{name}': array too long. Expected an array with maximum length {ctx['max_length']}, "
            f"but got an array with length {len(value)} instead."
        )
    if kind == "too_long" and isinstance(value, Mapping):
        return "invalid_value", (
            f"Invalid '{name}': too many properties. Expected an object with at most {ctx['max_length']} "
            f"properties, but got an object with {len(value)} properties instead."
        )
    # OpenAI's words for a function's empty name; its code unrecorded, so `empty_string`, as for an empty `stop`
    if kind == "string_too_short" and value == "":
        return "empty_string", (
            f"Invalid '{name}': empty string. Expected a string with minimum length {ctx['min_length']}, but got an "
            "empty string instead."
        )
    if kind == "string_too_long":
        expected = (
            f"Expected a string with maximum length {ctx['max_length']}, but got a string with length "
            f"{len(value)} instead."
        )
        if tuple(error["loc"][-1:]) == ("[key]",):  # pydantic's mark of a mapping's key, the part before it
            key = str(error["loc"][-2])
            owner = name[: -len(key) - 1]
            return "string_above_max_length", (
                f"Invalid property name in '{owner}': {key[:80]!r} is too long. {expected}"
            )
        return "string_above_max_length", f"Invalid '{name}': string too long. {expected}"
    if kind == "extra_forbidden":  # in Kilde's `filters`; OpenAI's own parameters ignore unknown keys here
        return "unknown_parameter", f"Unknown parameter: '{name}'."
    return "invalid_value", f"Invalid '{name}': {error['msg']}."


def invalid_body(errors: Sequence[Mapping[str, Any]], body: Any) -> tuple[str | None, str, str | None]:
    """(code, message, param) for a body that failed validation. OpenAI reports one error, so one is told:
    the first parameter at fault, at the deepest place the errors found in it (a union's member that matched
    the value's shape fails deeper than one that did not: `messages[0].content[0].text`, not "content is not a
    string"). The code is OpenAI's for the fault: `invalid_type` for a wrong type, else `fault`'s."""
    if not errors or any(e["type"] == "json_invalid" for e in errors):
        return "invalid_request", NOT_JSON, None
    if errors[0]["type"] == NON_FINITE:  # as any other body that is not JSON, saying why
        return "invalid_request", errors[0]["msg"], None
    found = [(location(body, e), e) for e in errors]
    first = found[0][0][:1]
    found = [(path, e) for path, e in found if path[:1] == first]
    path = max((p for p, _ in found), key=len)  # the first of the deepest
    here = [e for p, e in found if p == path]
    param = param_of(path)
    expected = list(dict.fromkeys(expected_of(e) for e in here))
    if None in expected:
        problem = next(e for e in here if expected_of(e) is None)
        return (*fault(problem, param or "body"), param)
    wanted = expected[0] if len(expected) == 1 else "one of " + " or ".join(expected)
    got = json_type(here[0].get("input"))
    return (
        "invalid_type",
        f"Invalid type for '{param or 'body'}': expected {wanted}, but got {got} instead.",
        param,
    )
