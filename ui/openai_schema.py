"""What an OpenAI chat request to Kilde may hold, and what Kilde makes of it.

`ChatIn` is the body of `POST /v1/chat/completions` (ui/openai_api.py serves it). `ask_request_of` reads it
as an `AskRequest`: the last message is the question (it must be the user's), the earlier user and assistant
messages are the history, the other roles' messages (system, developer, tool, function) are held to OpenAI's
shape for their role and ignored, and a parameter Kilde cannot honour is refused with
a `BadInputError` naming it (an `InvalidParameter`, with OpenAI's code, where OpenAI's API refuses it too or
has a code for the fault). `limits_of` reads `max_tokens`, `max_completion_tokens` and `stop` as the
`CompletionLimits` ui/completion_limits.py cuts the reply to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field

from assistant.answering.context import AskRequest
from assistant.core.errors import BadInputError
from assistant.core.types import Filters, Turn
from ui.api import FiltersIn, filters_from
from ui.completion_limits import MAX_STOP_LENGTH, MAX_STOP_SEQUENCES, CompletionLimits
from ui.openai_errors import InvalidParameter, ModelNotFound, one_of
from ui.openai_tools import CalledFunctionIn, FunctionChoiceIn, FunctionIn, ToolCallIn, ToolIn

MODEL_ID = "kilde"
# The turns the assistant may look at (`read_history`, which reads the last few that say something, the latest
# first): each is made text (`text_of`) only when it is looked at (`MessageTurns`). A longer conversation keeps
# its latest turns, as on /api/ask.
MAX_HISTORY_TURNS = 40
SOURCES_HEADING = {"nb": "Kilder:", "nn": "Kjelder:", "en": "Sources:"}
# A sources list Kilde appended to an earlier reply: cut from the history, it is not part of the answer.
SOURCES_TAIL = re.compile(r"\n\n(?:Sources|Kilder|Kjelder):\n\[\d+\] .*\Z", re.DOTALL)


# Strict, as OpenAI's API is about JSON types: "yes" or 1 is no boolean, "1", 1.0 and true no integer, "0.5" no
# number; a wrong type is a 400 naming its path (ui/openai_errors.py `invalid_body`), and so is a value outside the
# range OpenAI's API takes (`Field(ge=…, le=…)`; a float bound makes the parameter a decimal in the message).
# Unknown fields are ignored.
OPENAI = ConfigDict(extra="ignore", strict=True)


# OpenAI's limits on what Kilde ignores: `metadata` is 16 pairs, keys of at most 64 characters and values of at
# most 512 (its API reference); a request holds at most 128 tools (its answers) or 128 deprecated functions (its
# OpenAPI specification), an assistant message 128 calls (its answers).
MetadataKey = Annotated[str, Field(max_length=64)]
MetadataValue = Annotated[str, Field(max_length=512)]
MAX_TOOLS = 128
# A message's `name` (a participant's, or a function message's function), the pattern OpenAI's API holds it to
# now: no whitespace, `<`, `|`, `\`, `/` or `>` (its answers quote it; older answers quoted a function name's).
MessageName = Annotated[str, Field(pattern=r"^[^\s<|\\/>]+$")]


# The part types OpenAI's chat completions take (openai-python's `ChatCompletionContentPartParam`, and an
# assistant's `refusal` part), each holding its value under its own name: `{"type": "image_url", "image_url": …}`.
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")
# Those each role's messages may hold (openai-python's `ChatCompletion…MessageParam`); a function message's content
# is a string or null, never parts.
ROLE_PARTS = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
    "function": (),
}
# What a message of each role must hold besides its content.
ROLE_FIELDS = {"tool": "tool_call_id", "function": "name"}
# What each part looks like whole, for the message that says one is missing its value.
PART_EXAMPLES = {
    "text": '{"type": "text", "text": "…"}',
    "image_url": '{"type": "image_url", "image_url": {"url": "…"}}',
    "input_audio": '{"type": "input_audio", "input_audio": {"data": "…", "format": "wav"}}',
    "file": '{"type": "file", "file": {"file_id": "…"}}',
    "refusal": '{"type": "refusal", "refusal": "…"}',
}


class ImageURLIn(BaseModel):
    model_config = OPENAI
    url: str
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputAudioIn(BaseModel):
    model_config = OPENAI
    data: str
    format: Literal["wav", "mp3"]


class FileIn(BaseModel):
    model_config = OPENAI
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class ContentPart(BaseModel):
    """A part of a message's content, of one of OpenAI's types (another is a 400 naming the part's `type`). Kilde
    reads `text` parts, and an assistant's `refusal` parts; the others are held to their shape, then left out."""

    model_config = OPENAI
    type: Literal["text", "image_url", "input_audio", "file", "refusal"]  # PART_TYPES
    text: str | None = None
    refusal: str | None = None  # an assistant's `refusal` part, as OpenAI's own replies hold
    image_url: ImageURLIn | None = None
    input_audio: InputAudioIn | None = None
    file: FileIn | None = None


class MessageIn(BaseModel):
    """A message of any of OpenAI's roles. Kilde reads the user's and the assistant's (`content`, or an assistant's
    `refusal`); the others' fields are held to OpenAI's types and to what each role needs
    (`refuse_unfit_messages`), then left out."""

    model_config = OPENAI
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: MessageName | None = None
    refusal: str | None = None  # an assistant's, as OpenAI's own reply that refused holds it
    tool_call_id: str | None = None  # a tool message's
    # An assistant's calls, each of OpenAI's shape (ui/openai_tools.py); none is read. An empty list is OpenAI's
    # `empty_array`: leave the field out, or send null.
    tool_calls: list[ToolCallIn] | None = Field(None, min_length=1, max_length=MAX_TOOLS)
    function_call: CalledFunctionIn | None = None  # an assistant's, before tool_calls
    audio: dict[str, Any] | None = None  # an assistant's earlier spoken reply


class StreamOptionsIn(BaseModel):
    model_config = OPENAI
    include_usage: bool | None = None


class ResponseFormatIn(BaseModel):
    model_config = OPENAI
    type: str | None = None  # required, as OpenAI's: `refuse_invalid_values` says so naming its path


class ChatIn(BaseModel):
    """The fields Kilde reads or refuses. `max_tokens`, `max_completion_tokens` and `stop` cut the reply as
    OpenAI's do (ui/completion_limits.py). Sampling parameters (temperature, top_p, …) are held to OpenAI's
    ranges, then ignored, since the answer is quoted from the archive, not sampled; other OpenAI parameters
    are accepted and ignored, those a client commonly sends (seed, user, tools, metadata, …) once they have
    OpenAI's type and are within its limits, since OpenAI's API refuses them otherwise. A parameter Kilde cannot
    honour and a client relies on (a JSON reply, a forced tool or function call, logprobs) is refused, since a
    reply without it breaks the client further on; so is a value OpenAI's API refuses (`refuse_invalid_values`)."""

    model_config = ConfigDict(
        **OPENAI,
        json_schema_extra={
            "examples": [
                {
                    "model": MODEL_ID,
                    "messages": [{"role": "user", "content": "What does Article 4 commit each side to?"}],
                }
            ]
        },
    )
    model: str
    # No cap on the count: a long chat keeps its latest turns, and the body's size (1 MiB) bounds the work.
    messages: list[MessageIn] = Field(min_length=1)
    # OpenAI takes null for "not given" in each optional parameter.
    stream: bool | None = False
    n: int | None = Field(1, ge=1)  # and Kilde gives one answer: `ask_request_of` refuses more
    stream_options: StreamOptionsIn | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    response_format: ResponseFormatIn | None = None
    tool_choice: str | dict[str, Any] | None = None
    # `tool_choice` before tools, as older clients send it: "none", "auto" or a function named, beside `functions`
    function_call: str | FunctionChoiceIn | None = None
    logprobs: bool | None = None
    # Ignored, but of OpenAI's types and ranges: a client that sends another would be refused by OpenAI's API.
    top_logprobs: int | None = Field(None, ge=0, le=20)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # OpenAI's int64
    user: str | None = None
    # Each tool and function of the shape OpenAI's API takes (ui/openai_tools.py), though none is called. An empty
    # list is OpenAI's `empty_array`: leave the parameter out, or send null.
    tools: list[ToolIn] | None = Field(None, min_length=1, max_length=MAX_TOOLS)
    functions: list[FunctionIn] | None = Field(None, min_length=1, max_length=MAX_TOOLS)
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    parallel_tool_calls: bool | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = Field(None, max_length=16)
    store: bool | None = None
    filters: FiltersIn | None = Field(None, description="Kilde extension: as in /api/ask")


def text_of(message: MessageIn, index: int, *, asked: bool) -> str:
    """The text Kilde reads of a message. Only the question `asked` must be text: an earlier turn's other parts
    (a picture, say) are left out of the history, since a chat that once held one is resent with every later
    question, and an assistant's refusal (a part, or the field of OpenAI's own reply that refused) is what that
    turn said, as Kilde's own refusals are text. A part without its value, or of a type its role does not hold,
    is refused before, in any message (`refuse_unfit_messages`), and so is a part of a type OpenAI's API does
    not take (`ContentPart`)."""
    if message.content is None:
        return (message.refusal or "") if message.role == "assistant" else ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content:
        if part.type == "text":
            parts.append(part.text or "")
        elif asked:
            raise BadInputError(
                f"messages[{index}].content", f"Kilde reads text only, not {part.type!r} parts"
            )
        elif part.type == "refusal" and message.role == "assistant" and part.refusal:
            parts.append(part.refusal)
    return "".join(parts)


def refuse_unfit_messages(body: ChatIn) -> None:
    """A message without what its role needs, in any message: OpenAI's API refuses the request, however old the
    message (a client's bug read as "" or left out would go unseen here and fail against OpenAI). Its content,
    but a function message's, which may be null, and an assistant's beside a tool call or a refusal; a tool
    message's `tool_call_id`, a function message's `name`; parts only of the types its role holds (`ROLE_PARTS`),
    each with its value (`refuse_parts_without_their_value`); a call only in an assistant's message
    (`refuse_calls_off_the_assistant`); a tool message only after an assistant's tool call,
    answering one of its calls, and each call answered before the next message of another role. A check of the
    request's shape, as the schema's: no text is read or joined for it."""
    calls: list[str] = []  # the ids of the latest assistant message's tool calls
    unanswered: list[str] = []
    for index, message in enumerate(body.messages):
        refuse_calls_off_the_assistant(index, message)
        if message.role != "tool":
            refuse_unanswered_calls(index, unanswered)
            if message.role == "assistant":
                calls = call_ids(message)
                unanswered = list(calls)
        where = f"messages[{index}].content"
        given = "content" in message.model_fields_set
        said_otherwise = message.role == "assistant" and (
            message.tool_calls or message.function_call or message.refusal is not None or message.audio
        )
        if not given and not said_otherwise:
            raise InvalidParameter(
                where, f"Missing required parameter: '{where}'.", "missing_required_parameter"
            )
        if message.content is None and message.role != "function" and not said_otherwise:
            # OpenAI's words and code (none) for a null content
            raise InvalidParameter(where, f"Invalid value for '{where}': expected a string, got null.", None)
        needed = ROLE_FIELDS.get(message.role)
        if needed and getattr(message, needed) is None:  # OpenAI's words and code (none), missing or null
            raise InvalidParameter(
                f"messages[{index}].{needed}",
                f"Missing parameter '{needed}': messages with role '{message.role}' must have a '{needed}'.",
                None,
            )
        if isinstance(message.content, list):
            refuse_parts_its_role_does_not_hold(index, message)
            refuse_parts_without_their_value(index, message)
        if message.role == "tool" and not answers_a_call(body.messages[index - 1] if index else None):
            # OpenAI's words (but its "preceeding") and code (none); a client that cut its history between an
            # assistant's call and its answer meets it
            raise InvalidParameter(
                f"messages[{index}].role",
                "Invalid parameter: messages with role 'tool' must be a response to a preceding message with "
                "'tool_calls'.",
                None,
            )
        if message.role == "tool":
            answer_a_call(index, message.tool_call_id or "", calls, unanswered)


def refuse_calls_off_the_assistant(index: int, message: MessageIn) -> None:
    """Only an assistant message makes calls: OpenAI's API refuses a `function_call` in another's (its words; its
    `param` and code unrecorded), and `tool_calls` there is refused in the same words."""
    if message.role == "assistant":
        return
    for field, what in (("function_call", "a function call"), ("tool_calls", "tool calls")):
        if getattr(message, field) is not None:
            raise InvalidParameter(
                f"messages[{index}].{field}",
                f"Invalid parameter: only messages with role 'assistant' can have {what}.",
                None,
            )


def call_ids(message: MessageIn) -> list[str]:
    """The ids of an assistant message's tool calls, each once."""
    return list(dict.fromkeys(call.id for call in message.tool_calls or ()))


def answer_a_call(index: int, call_id: str, calls: list[str], unanswered: list[str]) -> None:
    """A tool message answers one of the calls of the assistant message before its run of tool messages; OpenAI's
    words and code (none). A call answered twice is not refused: OpenAI's answer to it is unrecorded."""
    if call_id not in calls:
        raise InvalidParameter(
            f"messages[{index}].tool_call_id",
            f"Invalid parameter: 'tool_call_id' of {call_id[:80]!r} not found in 'tool_calls' of previous message.",
            None,
        )
    if call_id in unanswered:
        unanswered.remove(call_id)


def refuse_unanswered_calls(index: int, unanswered: list[str]) -> None:
    """Every call of an assistant message is answered by a tool message before a message of another role, as
    OpenAI's API holds a chat (its words and code, none; its `param` names the message that came instead). A
    client that dropped a tool's answer meets it here, not at OpenAI."""
    if unanswered:
        raise InvalidParameter(
            f"messages[{index}].role",
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: "
            + ", ".join(i[:80] for i in unanswered),
            None,
        )


def answers_a_call(before: MessageIn | None) -> bool:
    """Whether a tool message after `before` answers a call: the assistant's that made it, or the run of tool
    messages answering it."""
    return before is not None and (
        before.role == "tool" or (before.role == "assistant" and bool(before.tool_calls))
    )


def refuse_parts_its_role_does_not_hold(index: int, message: MessageIn) -> None:
    allowed = ROLE_PARTS[message.role]
    if not allowed:
        where = f"messages[{index}].content"
        raise InvalidParameter(
            where, f"Invalid type for '{where}': expected a string, but got an array instead.", "invalid_type"
        )
    for n, part in enumerate(message.content or ()):
        if part.type not in allowed:
            where = f"messages[{index}].content[{n}].type"
            raise InvalidParameter(
                where,
                f"Invalid value for '{where}': {part.type!r}. Supported values in a message with role "
                f"{message.role!r} are: {one_of(allowed)}.",
                "invalid_value",
            )


def refuse_parts_without_their_value(index: int, message: MessageIn) -> None:
    """A part without the value its type names (a `text` part without its `text`, an `image_url` part without its
    `image_url`), as OpenAI's API refuses it."""
    for n, part in enumerate(message.content or ()):
        if getattr(part, part.type) is None:
            where = f"messages[{index}].content[{n}].{part.type}"
            article = "An" if part.type[0] in "aeiou" else "A"
            raise InvalidParameter(
                where,
                f"Missing required parameter: '{where}'. {article} '{part.type}' part needs its {part.type}: "
                f"{PART_EXAMPLES[part.type]}",
                "missing_required_parameter",
            )


class MessageTurns(Sequence[Turn]):
    """The user and assistant messages before the question, as the history's turns, each made text
    (`text_of`, its sources list cut) only when the assistant looks at it. `read_history` looks at the latest
    few that say something, so an older message, however long, costs no more than its validation (it was made
    text whole, and counted in `usage`, though never read)."""

    def __init__(self, said: Sequence[tuple[int, MessageIn]]):
        self.said = said

    def __len__(self) -> int:
        return len(self.said)

    @overload
    def __getitem__(self, i: int) -> Turn: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Turn]: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return MessageTurns(self.said[i])
        index, message = self.said[i]
        text = text_of(message, index, asked=False)
        if message.role == "assistant":
            text = SOURCES_TAIL.sub("", text)
        return Turn(message.role, text)


TOOL_CHOICES = ("none", "auto", "required")  # or an object naming a tool
FUNCTION_CALLS = ("none", "auto")  # or an object naming a function
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOKEN_ID = re.compile(r"[0-9]+")  # a `logit_bias` key: ASCII digits alone, not "-1", " 12" or "1e3"


def refuse_invalid_values(body: ChatIn) -> None:
    """Values of OpenAI's types that OpenAI's API refuses all the same: read loosely (an unknown `tool_choice`
    as "auto"), a client's typo would go unseen here and fail against OpenAI. Each with OpenAI's code; a
    parameter allowed only beside another has none, as OpenAI's answer has none."""
    refuse_unfit_messages(body)
    choice = body.tool_choice
    if isinstance(choice, str) and choice not in TOOL_CHOICES:
        raise InvalidParameter(
            "tool_choice",
            f"Invalid value for 'tool_choice': {choice[:80]!r}. Supported values are: {one_of(TOOL_CHOICES)}, "
            "or an object naming a tool.",
            "invalid_value",
        )
    # Only beside tools, in OpenAI's words and code (none); "none" alone is taken without them
    if choice is not None and choice != "none" and body.tools is None:
        raise InvalidParameter(
            "tool_choice",
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            None,
        )
    if body.parallel_tool_calls is not None and body.tools is None:  # true or false alike
        raise InvalidParameter(
            "parallel_tool_calls",
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are "
            "specified.",
            None,
        )
    call = body.function_call
    if isinstance(call, str) and call not in FUNCTION_CALLS:
        raise InvalidParameter(
            "function_call",
            f"Invalid value for 'function_call': {call[:80]!r}. Supported values are: {one_of(FUNCTION_CALLS)}, "
            "or an object naming a function.",
            "invalid_value",
        )
    if call is not None and not body.functions:  # OpenAI's words and code (none)
        raise InvalidParameter(
            "function_call",
            "Invalid value for 'function_call': 'function_call' is only allowed when 'functions' "
            "are specified.",
            None,
        )
    kind = body.response_format.type if body.response_format else "text"
    if kind is None:
        raise InvalidParameter(
            "response_format.type",
            "Missing required parameter: 'response_format.type'.",
            "missing_required_parameter",
        )
    if kind not in RESPONSE_FORMATS:
        raise InvalidParameter(
            "response_format.type",
            f"Invalid value for 'response_format.type': {kind[:80]!r}. "
            f"Supported values are: {one_of(RESPONSE_FORMATS)}.",
            "invalid_value",
        )
    if body.stream_options is not None and not body.stream:
        raise InvalidParameter(
            "stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.", None
        )
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidParameter(
            "top_logprobs", "The 'top_logprobs' parameter is only allowed when 'logprobs' is true.", None
        )
    for key in body.logit_bias or ():
        if not TOKEN_ID.fullmatch(key):  # OpenAI's words and code (none); the bound on an id is its model's
            raise InvalidParameter(
                "logit_bias",
                f"Invalid key in 'logit_bias': {key[:80]}. You should only be submitting non-negative integers.",
                None,
            )


def refuse_what_cannot_be_honoured(body: ChatIn) -> None:
    """A client that asks for JSON, a tool or function call or logprobs parses the reply for them: a cited text
    answer would fail there, far from the cause (LangChain's `with_structured_output` returned None)."""
    kind = body.response_format.type if body.response_format else "text"
    if kind != "text":
        raise InvalidParameter(
            "response_format",
            f"Unsupported value: 'response_format' does not support {kind!r} with this model. Kilde answers "
            "in text with citations; leave response_format out (the structured answer is in the reply's "
            "`kilde` field).",
            "unsupported_value",
        )
    choice = body.tool_choice
    allowed = choice.get("allowed_tools") if isinstance(choice, dict) else None
    free = isinstance(allowed, dict) and allowed.get("mode") == "auto"  # a client may send any JSON there
    if choice == "required" or (isinstance(choice, dict) and not free):
        what = repr(choice) if isinstance(choice, str) else "a tool call"
        raise InvalidParameter(
            "tool_choice",
            f"Unsupported value: 'tool_choice' does not support {what} with this model. Kilde calls no "
            "tools, it answers in text; leave tool_choice out, or send 'auto' or 'none'.",
            "unsupported_value",
        )
    if isinstance(body.function_call, FunctionChoiceIn):
        raise InvalidParameter(
            "function_call",
            "Unsupported value: 'function_call' does not support a function call with this model. Kilde calls no "
            "functions, it answers in text; leave function_call out, or send 'auto' or 'none'.",
            "unsupported_value",
        )
    if body.logprobs:
        raise InvalidParameter(
            "logprobs",
            "Unsupported parameter: 'logprobs' is not supported with this model. Kilde quotes its answer, "
            "it does not sample one: there are no logprobs.",
            "unsupported_parameter",
        )


def ask_request_of(body: ChatIn) -> AskRequest:
    if body.model != MODEL_ID:
        raise ModelNotFound("model", f"no model {body.model[:80]!r}; this server has one model, {MODEL_ID!r}")
    if body.n not in (1, None):
        raise InvalidParameter(
            "n",
            f"Unsupported value: 'n' does not support {body.n} with this model. Kilde gives one answer per "
            "question; n must be 1.",
            "unsupported_value",
        )
    refuse_invalid_values(body)
    refuse_what_cannot_be_honoured(body)
    last = body.messages[-1]
    if last.role != "user":
        raise BadInputError(
            "messages", f"the last message must be the user's question, not one of role {last.role!r}"
        )
    # Only the turns the assistant reads are made text (`MessageTurns`): an older message that is too long is
    # dropped with its turn, not refused on every later question of the chat. The assistant cuts long turns.
    asked = len(body.messages) - 1
    said = [(i, m) for i, m in enumerate(body.messages[:asked]) if m.role in ("user", "assistant")]
    filters = filters_from(body.filters) if body.filters else Filters()
    return AskRequest(
        question=text_of(last, asked, asked=True),
        history=MessageTurns(said[-MAX_HISTORY_TURNS:]),  # read into a tuple by `Assistant.validate`
        filters=filters,
    )


def limits_of(body: ChatIn) -> CompletionLimits:
    """Where the reply is cut. Given both token limits (`max_tokens` is the older name), the smaller holds."""
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    if len(stop) > MAX_STOP_SEQUENCES:
        raise InvalidParameter(
            "stop",
            f"Invalid 'stop': array too long. Expected up to {MAX_STOP_SEQUENCES} stop sequences, as OpenAI "
            f"takes, but got {len(stop)} instead.",
            "array_above_max_length",
        )
    if not all(stop):
        raise InvalidParameter(
            "stop",
            "Invalid 'stop': empty string. A stop sequence cannot be empty; leave it out, or send null for none.",
            "empty_string",
        )
    if any(len(s) > MAX_STOP_LENGTH for s in stop):
        raise InvalidParameter(
            "stop",
            f"Invalid 'stop': string too long. A stop sequence is at most {MAX_STOP_LENGTH:,} characters.",
            "string_above_max_length",
        )
    given = [n for n in (body.max_tokens, body.max_completion_tokens) if n is not None]
    return CompletionLimits(max_tokens=min(given, default=None), stop=stop)
