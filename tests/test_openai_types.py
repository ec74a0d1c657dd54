"""The JSON types of `/v1/chat/completions`' parameters, held as OpenAI's API holds them: a value of the wrong
type is a 400 `invalid_request_error` naming the parameter by its path in the body (`messages[0].content`), and
nothing is answered. Malformed bodies go through raw httpx (the `openai` client types its arguments); what a
client sends goes through the `openai` client. Against the real app served by uvicorn over the small index."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from assistant.testing.corpus import DEMO_QUESTION_EN
from assistant.testing.servers import ThreadServer

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": DEMO_QUESTION_EN}]


@pytest.fixture(scope="module")
def api(built_index, assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(built_index.replace(rate_limit_per_minute=1000), assistant)).start()
    yield server
    server.stop()


def refused(url: str, body: dict | str) -> dict:
    """The error of a request that must be refused before anything is answered. A body given as text is sent as
    it is, as JSON."""
    if isinstance(body, str):
        sent = {"content": body, "headers": {"content-type": "application/json"}}
    else:
        sent = {"json": body}
    response = httpx.post(url + "/v1/chat/completions", **sent, timeout=120)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"  # no stream was begun
    reply = response.json()
    assert set(reply) == {"error"}, reply  # no choices
    assert reply["error"]["type"] == "invalid_request_error"
    return reply["error"]


# A value in the body, wrong where OpenAI's union of types fails deeper than "not a string": the parameter named
# is the place in the body at fault, not pydantic's `messages.0.content.str`.
NESTED = [
    ("a number as content", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("a string as message", {"messages": ["hi"]}, "messages[0]"),
    (
        "a number as a part's text",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
        "messages[0].content[0].text",
    ),
    (
        "a string as a part",
        {"messages": [*QUESTION, {"role": "assistant", "content": ["hi"]}, *QUESTION]},
        "messages[1].content[0]",
    ),
    ("a number as a stop sequence", {"stop": ["\n\n", 5]}, "stop[1]"),
    ("a number as stop", {"stop": 5}, "stop"),
]


@pytest.mark.parametrize(("case", "fragment", "param"), NESTED, ids=[c[0] for c in NESTED])
def test_a_wrong_type_names_the_parameter_by_its_path(api, case, fragment, param):
    error = refused(api.url, {"model": "kilde", "messages": QUESTION, **fragment})
    assert error["param"] == param and error["code"] == "invalid_type"
    assert error["message"].startswith(f"Invalid type for '{param}': expected ")


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_json_body_sent_as_another_content_type_is_a_415_that_names_json(api, content_type):
    # `curl -d` without its header: FastAPI left the body unparsed, and the 400 said "Invalid type for 'body':
    # expected an object, but got an object instead."
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps({"model": "kilde", "messages": QUESTION})
    response = httpx.post(api.url + "/v1/chat/completions", content=body, headers=headers, timeout=60)
    assert response.status_code == 415
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("unsupported_media_type", "invalid_request_error")
    assert "send it as JSON with the header content-type: application/json" in error["message"]


# Python's parser (FastAPI's) reads NaN, Infinity and -Infinity, which JSON has not, and Python's `json.dumps` writes
# them: a `temperature` of NaN was "decimal above maximum value … got nan", a NaN in a parameter Kilde ignores was
# answered, where OpenAI's API cannot parse such a body.
NON_FINITE = [
    ('"temperature": NaN', "NaN"),
    ('"top_p": Infinity', "Infinity"),
    ('"frequency_penalty": -Infinity', "-Infinity"),
    ('"seed": NaN', "NaN"),
    ('"some_extension": NaN', "NaN"),
    (
        '"tools": [{"type": "function", "function": {"name": "f", "parameters": {"maximum": Infinity}}}]',
        "Infinity",
    ),
]


@pytest.mark.parametrize(("fragment", "constant"), NON_FINITE, ids=[f for f, _ in NON_FINITE])
def test_nan_or_infinity_in_a_body_is_refused_as_a_body_that_is_not_json(api, fragment, constant):
    start = '{"model": "kilde", "messages": [{"role": "user", "content": "What does Article 4 say?"}], '
    error = refused(api.url, start + fragment + "}")
    cut_short = refused(api.url, start[:-2])  # any other body that is not JSON
    assert (
        {**error, "message": None}
        == {**cut_short, "message": None}
        == {
            "message": None,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request",
        }
    )
    assert error["message"] == (
        f"The request body is not valid JSON: {constant} is not a JSON value (JSON numbers are finite; Python's "
        "json.dumps writes NaN and Infinity unless told allow_nan=False)."
    )


def test_nan_and_infinity_inside_strings_are_text(api):
    text = json.dumps(
        {"model": "kilde", "messages": [{"role": "user", "content": "Is NaN or -Infinity a number?"}]}
    )
    response = httpx.post(
        api.url + "/v1/chat/completions",
        content=text,
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"], response.text


def test_a_union_of_types_is_named_whole_and_the_value_sent_is_named(api):
    error = refused(api.url, {"model": "kilde", "messages": [{"role": "user", "content": 5}]})
    assert error["message"] == (
        "Invalid type for 'messages[0].content': expected one of a string or an array, "
        "but got an integer instead."
    )
    error = refused(api.url, {"model": "kilde", "messages": [{"role": 5, "content": "x"}]})
    assert error["param"] == "messages[0].role" and "got an integer" in error["message"]


def test_other_faults_name_their_path_too_and_one_error_is_told(api):
    # With OpenAI's codes and words: they were Kilde's `invalid_request` and pydantic's "Field required".
    missing = refused(api.url, {"model": "kilde", "messages": [{"content": "x"}]})
    assert missing["param"] == "messages[0].role" and missing["code"] == "missing_required_parameter"
    assert missing["message"] == "Missing required parameter: 'messages[0].role'."
    # Two faults: the first parameter's is told
    first = refused(api.url, {"messages": [{"content": "x"}]})
    assert (first["param"], first["code"]) == ("model", "missing_required_parameter")
    assert first["message"] == "Missing required parameter: 'model'."
    no_messages = refused(api.url, {"model": "kilde"})
    assert (no_messages["param"], no_messages["code"]) == ("messages", "missing_required_parameter")
    wrong = refused(api.url, {"model": "kilde", "messages": [{"role": "wizard", "content": "x"}]})
    assert wrong["param"] == "messages[0].role" and wrong["code"] == "invalid_value"
    assert wrong["message"] == (
        "Invalid value for 'messages[0].role': 'wizard'. Supported values are: "
        "'system', 'developer', 'user', 'assistant', 'tool', and 'function'."
    )
    empty = refused(api.url, {"model": "kilde", "messages": []})
    assert (empty["param"], empty["code"]) == ("messages", "empty_array")
    assert empty["message"] == (
        "Invalid 'messages': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead."
    )
    unknown = refused(api.url, {"model": "kilde", "messages": QUESTION, "filters": {"colour": "red"}})
    assert (unknown["param"], unknown["code"]) == ("filters.colour", "unknown_parameter")
    not_json = httpx.post(
        api.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["param"] is None


# Each parameter Kilde reads, sent as a type OpenAI refuses: the string, number or 0/1 a loose reader takes for a
# boolean, the string, boolean or decimal it takes for an integer, the string or boolean it takes for a number.
WRONG_TYPES = [
    ("stream", "yes"),
    ("stream", "true"),
    ("stream", 1),
    ("stream", 0),
    ("n", "1"),
    ("n", True),
    ("n", 1.0),
    ("n", 1.5),
    ("max_tokens", "5"),
    ("max_tokens", True),
    ("max_tokens", 5.0),
    ("max_completion_tokens", "5"),
    ("max_completion_tokens", False),
    ("max_completion_tokens", 100.0),
    ("temperature", "0.5"),
    ("temperature", True),
    ("top_p", "1"),
    ("top_p", False),
    ("presence_penalty", "0"),
    ("frequency_penalty", True),
    ("stop", True),
    ("stop", {"a": "b"}),
    ("stream_options", "yes"),
    ("stream_options", True),
    ("response_format", "json"),
    ("response_format", "text"),
    ("tool_choice", 7),
    ("tool_choice", True),
    ("tool_choice", ["auto"]),
    ("logprobs", "false"),
    ("logprobs", 0),
    ("model", 5),
    ("model", None),
    ("messages", "hi"),
    ("messages", {"role": "user", "content": "hi"}),
    ("filters", "until 2000"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(("param", "value"), WRONG_TYPES, ids=[f"{p}={v!r}" for p, v in WRONG_TYPES])
def test_a_parameter_of_the_wrong_type_is_refused_naming_it(api, param, value, stream):
    body = {"model": "kilde", "messages": QUESTION, "stream": stream, param: value}
    error = refused(api.url, body)
    assert error["param"] == param and error["code"] == "invalid_type", error
    assert error["message"].startswith(f"Invalid type for '{param}': expected ")


NESTED_WRONG_TYPES = [
    ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ({"stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
    ({"response_format": {"type": 5}}, "response_format.type"),
    (
        {"messages": [{"role": "user", "content": "x", "name": "a"}, {"role": True, "content": "x"}]},
        "messages[1].role",
    ),
    ({"messages": [{"role": "user", "content": [{"type": 5, "text": "x"}]}]}, "messages[0].content[0].type"),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": ["x"]}]}]},
        "messages[0].content[0].text",
    ),
    (
        {
            "messages": [
                {"role": "assistant", "content": [{"type": "refusal", "refusal": True}]},
                *QUESTION,
            ]
        },
        "messages[0].content[0].refusal",
    ),
    ({"messages": [{"role": "user", "content": False}]}, "messages[0].content"),
    ({"filters": {"since": 2024}}, "filters.since"),
]


@pytest.mark.parametrize(("fragment", "param"), NESTED_WRONG_TYPES, ids=[c[1] for c in NESTED_WRONG_TYPES])
def test_a_nested_value_of_the_wrong_type_is_refused_naming_its_path(api, fragment, param):
    for stream in (False, True):
        error = refused(api.url, {"model": "kilde", "messages": QUESTION, "stream": stream, **fragment})
        assert error["param"] == param and error["code"] == "invalid_type", error


def test_the_message_names_what_was_expected_and_what_came(api):
    def message(param, value):
        return refused(api.url, {"model": "kilde", "messages": QUESTION, param: value})["message"]

    assert (
        message("stream", "yes") == "Invalid type for 'stream': expected a boolean, but got a string instead."
    )
    assert message("n", 1.0) == "Invalid type for 'n': expected an integer, but got a number instead."
    assert message("max_tokens", True) == (
        "Invalid type for 'max_tokens': expected an integer, but got a boolean instead."
    )
    assert message("temperature", "0.5") == (
        "Invalid type for 'temperature': expected a number, but got a string instead."
    )


def test_what_a_client_sends_is_answered_with_every_parameter_typed_or_null(api):
    """The `openai` client with every parameter Kilde reads, of OpenAI's types: whole numbers where a number
    is asked for, and null for "not given"."""
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    typed = dict(
        model="kilde",
        messages=[
            {"role": "system", "content": "Answer from the archive."},
            {"role": "user", "content": [{"type": "text", "text": DEMO_QUESTION_EN}]},
        ],
        n=1,
        temperature=1,  # an integer is a number
        top_p=1,
        presence_penalty=0,
        frequency_penalty=-0.5,
        max_tokens=4096,
        max_completion_tokens=4096,
        stop="\u2603",
        response_format={"type": "text"},
        tool_choice="none",
        logprobs=False,
        extra_body={"filters": {"since": None, "sources": []}},
    )
    reply = chat.completions.create(**typed)
    assert "[1]" in reply.choices[0].message.content
    stream = chat.completions.create(**typed, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == reply.choices[0].message.content
    )
    assert chunks[-1].usage.completion_tokens > 0
    nulls = {
        name: None
        for name in (
            "n",
            "temperature",
            "top_p",
            "presence_penalty",
            "frequency_penalty",
            "max_tokens",
            "max_completion_tokens",
            "stop",
            "response_format",
            "tool_choice",
            "logprobs",
            "stream",
            "stream_options",
        )
    }
    nothing = chat.completions.create(
        model="kilde",
        messages=[{"role": "user", "content": DEMO_QUESTION_EN}],
        extra_body={**nulls, "filters": None},
    )
    assert nothing.choices[0].message.content == reply.choices[0].message.content


# Parameters Kilde ignores, and OpenAI's API refuses of another type: accepted, they hid the client's bug.
IGNORED_WRONG_TYPES = [
    ("seed", "7"),
    ("seed", 7.5),
    ("seed", True),
    ("top_logprobs", "2"),
    ("user", 5),
    ("user", {"id": "a"}),
    ("tools", "none"),
    ("tools", ["get_weather"]),
    ("parallel_tool_calls", "false"),
    ("metadata", "x"),
    ("store", 1),
]


@pytest.mark.parametrize(
    ("param", "value"), IGNORED_WRONG_TYPES, ids=[f"{p}={v!r}" for p, v in IGNORED_WRONG_TYPES]
)
def test_an_ignored_parameter_of_the_wrong_type_is_refused_too(api, param, value):
    error = refused(api.url, {"model": "kilde", "messages": QUESTION, param: value})
    where = "tools[0]" if param == "tools" and isinstance(value, list) else param
    assert error["param"] == where and error["code"] == "invalid_type", error


def test_a_metadata_value_must_be_a_string(api):
    error = refused(api.url, {"model": "kilde", "messages": QUESTION, "metadata": {"k": 7}})
    assert error["param"] == "metadata.k" and error["code"] == "invalid_type"


TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
# Ignored, so answered whatever their size, where OpenAI's API holds them to its limits: a `metadata` of 16 pairs,
# keys of at most 64 characters and values of at most 512 (its API reference), up to 128 `tools` and 128 calls
# in an assistant message (its recorded answers: "Invalid 'tools': array too long. Expected an array with
# maximum length 128, …", code `array_above_max_length`).
TOO_LARGE = [
    (
        "17 metadata pairs",
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
        "invalid_value",
        "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an object "
        "with 17 properties instead.",
    ),
    (
        "a metadata key of 65 characters",
        {"metadata": {"k" * 65: "v"}},
        "metadata." + "k" * 65,
        "string_above_max_length",
        f"Invalid property name in 'metadata': {'k' * 65!r} is too long. Expected a string with maximum length 64, "
        "but got a string with length 65 instead.",
    ),
    (
        "a metadata value of 513 characters",
        {"metadata": {"session": "v" * 513}},
        "metadata.session",
        "string_above_max_length",
        "Invalid 'metadata.session': string too long. Expected a string with maximum length 512, but got a string "
        "with length 513 instead.",
    ),
    (
        "129 tools",
        {"tools": [TOOL] * 129},
        "tools",
        "array_above_max_length",
        "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length "
        "129 instead.",
    ),
    # The deprecated `functions` were answered however many: OpenAI's OpenAPI specification holds them to 128
    # (openai/openai-openapi pull 76), in the words of its limit on `tools`.
    (
        "129 functions",
        {"functions": [TOOL["function"]] * 129},
        "functions",
        "array_above_max_length",
        "Invalid 'functions': array too long. Expected an array with maximum length 128, but got an array with "
        "length 129 instead.",
    ),
    (
        "129 tool calls in an assistant message",
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [CALL] * 129},
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
                *QUESTION,
            ]
        },
        "messages[1].tool_calls",
        "array_above_max_length",
        "Invalid 'messages[1].tool_calls': array too long. Expected an array with maximum length 128, but got an "
        "array with length 129 instead.",
    ),
]


def assert_refused(api, fragment: dict, param: str | None, code: str | None, says: str) -> None:
    """The question with `fragment` added is refused as OpenAI's API refuses it: a 400 naming `param`, with its
    `code` and words, as the `openai` client reads them."""
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    with pytest.raises(openai.BadRequestError) as caught:
        chat.completions.create(**{"model": "kilde", "messages": QUESTION, **fragment})
    error = caught.value
    assert (error.param, error.code, error.type) == (param, code, "invalid_request_error"), error.body
    assert error.body["message"] == says


@pytest.mark.parametrize(
    ("case", "fragment", "param", "code", "says"), TOO_LARGE, ids=[c[0] for c in TOO_LARGE]
)
def test_an_ignored_parameter_over_openais_limit_is_refused_naming_it(api, case, fragment, param, code, says):
    assert_refused(api, fragment, param, code, says)


def test_ignored_parameters_at_openais_limits_are_answered(api):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    metadata = {f"{i:064d}": "v" * 512 for i in range(16)}
    ids = [f"call_{i}" for i in range(128)]
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": i} for i in ids]},
        *({"role": "tool", "tool_call_id": i, "content": "Sunny"} for i in ids),
        *QUESTION,
    ]
    reply = chat.completions.create(model="kilde", messages=messages, metadata=metadata, tools=[TOOL] * 128)
    assert "[1]" in reply.choices[0].message.content
    reply = chat.completions.create(model="kilde", messages=QUESTION, functions=[TOOL["function"]] * 128)
    assert "[1]" in reply.choices[0].message.content


def test_ignored_parameters_of_openais_types_are_answered(api):
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    reply = chat.completions.create(
        model="kilde",
        messages=QUESTION,
        seed=7,
        user="someone",
        tools=[weather],
        tool_choice="auto",
        parallel_tool_calls=False,
        metadata={"session": "a"},
        store=False,
        logprobs=False,
        top_logprobs=None,
    )
    assert "[1]" in reply.choices[0].message.content
    nulls = dict.fromkeys(
        ("seed", "user", "tools", "parallel_tool_calls", "metadata", "store", "top_logprobs")
    )
    again = chat.completions.create(model="kilde", messages=QUESTION, extra_body=nulls)
    assert again.choices[0].message.content == reply.choices[0].message.content


# A tool's own shape, which OpenAI's API holds each tool to, in its words and codes where they are recorded ("Missing
# required parameter: 'tools[0].function'.", code `missing_required_parameter`; "Invalid 'tools[8].function.name':
# string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", `invalid_value`;
# "Invalid 'tools[0].function.name': string too long. …", `string_above_max_length`) and its API reference's rule for
# a function's name (a-z, A-Z, 0-9, underscores and dashes, at most 64): each was answered, so a client's tool that
# OpenAI refuses went unseen.
NAME_PATTERN = "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
BAD_TOOLS = [
    (
        "a function tool without its function",
        {"tools": [{"type": "function"}]},
        "tools[0].function",
        "missing_required_parameter",
        "Missing required parameter: 'tools[0].function'.",
    ),
    (
        "a tool without its type",
        {"tools": [{"function": {"name": "get_weather"}}]},
        "tools[0].type",
        "missing_required_parameter",
        "Missing required parameter: 'tools[0].type'.",
    ),
    (
        "a function without its name",
        {"tools": [TOOL, {"type": "function", "function": {"description": "The weather"}}]},
        "tools[1].function.name",
        "missing_required_parameter",
        "Missing required parameter: 'tools[1].function.name'.",
    ),
    (
        "a name with a space",
        {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
        "tools[0].function.name",
        "invalid_value",
        f"Invalid 'tools[0].function.name': string does not match pattern. {NAME_PATTERN}",
    ),
    (
        "a name with a space, in a function that holds a key named function",
        {"tools": [{"type": "function", "function": {"name": "get weather", "function": {"name": "x"}}}]},
        "tools[0].function.name",
        "invalid_value",
        f"Invalid 'tools[0].function.name': string does not match pattern. {NAME_PATTERN}",
    ),
    (
        "a name with a dot",
        {"tools": [{"type": "function", "function": {"name": "weather.get"}}]},
        "tools[0].function.name",
        "invalid_value",
        f"Invalid 'tools[0].function.name': string does not match pattern. {NAME_PATTERN}",
    ),
    (
        "a name of 65 characters",
        {"tools": [{"type": "function", "function": {"name": "a" * 65}}]},
        "tools[0].function.name",
        "string_above_max_length",
        "Invalid 'tools[0].function.name': string too long. Expected a string with maximum length 64, but got a "
        "string with length 65 instead.",
    ),
    (
        "an empty name",
        {"tools": [{"type": "function", "function": {"name": ""}}]},
        "tools[0].function.name",
        "empty_string",
        "Invalid 'tools[0].function.name': empty string. Expected a string with minimum length 1, but got an empty "
        "string instead.",
    ),
    (
        "a name that is a number",
        {"tools": [{"type": "function", "function": {"name": 5}}]},
        "tools[0].function.name",
        "invalid_type",
        "Invalid type for 'tools[0].function.name': expected a string, but got an integer instead.",
    ),
    (
        "parameters as a string",
        {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": "{}"}}]},
        "tools[0].function.parameters",
        "invalid_type",
        "Invalid type for 'tools[0].function.parameters': expected an object, but got a string instead.",
    ),
    (
        "parameters as an array",
        {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": []}}]},
        "tools[0].function.parameters",
        "invalid_type",
        "Invalid type for 'tools[0].function.parameters': expected an object, but got an array instead.",
    ),
    (
        "a function that is a string",
        {"tools": [{"type": "function", "function": "get_weather"}]},
        "tools[0].function",
        "invalid_type",
        "Invalid type for 'tools[0].function': expected an object, but got a string instead.",
    ),
    (
        "a type other than function or custom",
        {"tools": [{"type": "retrieval", "function": {"name": "get_weather"}}]},
        "tools[0].type",
        "invalid_value",
        "Invalid value for 'tools[0].type': 'retrieval'. Supported values are: 'function' and 'custom'.",
    ),
    (
        "a type that is a number",
        {"tools": [{"type": 1, "function": {"name": "get_weather"}}]},
        "tools[0].type",
        "invalid_type",
        "Invalid type for 'tools[0].type': expected a string, but got an integer instead.",
    ),
    (
        "a custom tool without its custom",
        {"tools": [{"type": "custom"}]},
        "tools[0].custom",
        "missing_required_parameter",
        "Missing required parameter: 'tools[0].custom'.",
    ),
    (
        "a deprecated function with a space in its name",
        {"functions": [{"name": "get weather"}]},
        "functions[0].name",
        "invalid_value",
        f"Invalid 'functions[0].name': string does not match pattern. {NAME_PATTERN}",
    ),
    # OpenAI's words and code for a description over its limit (getsentry/sentry-mcp issue 106)
    (
        "a description of 1,025 characters",
        {"tools": [{"type": "function", "function": {"name": "get_weather", "description": "d" * 1025}}]},
        "tools[0].function.description",
        "string_above_max_length",
        "Invalid 'tools[0].function.description': string too long. Expected a string with maximum length 1024, "
        "but got a string with length 1025 instead.",
    ),
    (
        "a deprecated function's description of 1,025 characters",
        {"functions": [{"name": "get_weather", "description": "d" * 1025}]},
        "functions[0].description",
        "string_above_max_length",
        "Invalid 'functions[0].description': string too long. Expected a string with maximum length 1024, but "
        "got a string with length 1025 instead.",
    ),
]


@pytest.mark.parametrize(
    ("case", "fragment", "param", "code", "says"), BAD_TOOLS, ids=[c[0] for c in BAD_TOOLS]
)
def test_a_tool_openai_refuses_is_refused_naming_its_path(api, case, fragment, param, code, says):
    assert_refused(api, fragment, param, code, says)


# OpenAI's words and code for a message's name off its pattern (langchain-ai/langchain issue 35054): a name with a
# space went unseen here and failed against OpenAI.
MESSAGE_NAME_PATTERN = r"Expected a string that matches the pattern '^[^\s<|\\/>]+$'."
BAD_MESSAGE_NAMES = [
    ("a space", [{"role": "user", "content": "Hi", "name": "a b"}], "messages[0].name"),
    ("a slash", [{"role": "system", "content": "Be brief.", "name": "team/kari"}], "messages[0].name"),
    ("an empty name", [{"role": "assistant", "content": "Hello.", "name": ""}], "messages[0].name"),
]


@pytest.mark.parametrize(
    ("case", "earlier", "param"), BAD_MESSAGE_NAMES, ids=[c[0] for c in BAD_MESSAGE_NAMES]
)
def test_a_message_name_openai_refuses_is_refused_naming_it(api, case, earlier, param):
    says = f"Invalid '{param}': string does not match pattern. {MESSAGE_NAME_PATTERN}"
    assert_refused(api, {"messages": [*earlier, *QUESTION]}, param, "invalid_value", says)


def test_message_names_of_openais_pattern_are_answered(api):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    messages = [
        {"role": "system", "content": "Be brief.", "name": "Kari_Nordmann"},
        {"role": "user", "content": "Hi", "name": "Åse-2"},
        {"role": "assistant", "content": "Hello.", "name": "kari.nordmann@example.no"},
        {**QUESTION[0], "name": "Kari"},
    ]
    reply = chat.completions.create(model="kilde", messages=messages)
    assert "[1]" in reply.choices[0].message.content


def test_tools_of_each_shape_openai_takes_are_answered(api):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    tools = [
        {"type": "function", "function": {"name": "a" * 64}},  # no parameters: a function that takes none
        {
            "type": "function",
            "function": {
                "name": "Get_weather-2",
                "description": "d" * 1024,
                "parameters": {"type": "object", "properties": {}},
                "strict": True,
            },
        },
        {
            "type": "custom",
            "custom": {"name": "run_sql", "description": "Runs SQL", "format": {"type": "text"}},
        },
        # A custom tool's description has no limit: OpenAI's 1,024 is recorded for a function's alone
        {"type": "custom", "custom": {"name": "run_lark", "description": "d" * 5000}},
    ]
    reply = chat.completions.create(model="kilde", messages=QUESTION, tools=tools)
    assert "[1]" in reply.choices[0].message.content
    reply = chat.completions.create(
        model="kilde", messages=QUESTION, functions=[{"name": "get_weather", "parameters": {}}]
    )
    assert "[1]" in reply.choices[0].message.content


# Values of OpenAI's types that OpenAI's API refuses, each naming its parameter, with OpenAI's code (they were all
# Kilde's `bad_request`): read loosely, a client's typo went unseen here and failed against OpenAI.
INVALID_VALUES = [
    ("an unknown tool_choice", {"tool_choice": "bogus"}, "tool_choice", "invalid_value", "'bogus'"),
    # Ignored, read as "auto": a typo went unseen.
    (
        "an unknown function_call",
        {"function_call": "never"},
        "function_call",
        "invalid_value",
        "Invalid value for 'function_call': 'never'. Supported values are: 'none' and 'auto', or an object naming "
        "a function.",
    ),
    (
        "tool_choice in capitals",
        {"tool_choice": "AUTO"},
        "tool_choice",
        "invalid_value",
        "'none', 'auto', and 'required'",
    ),
    # Read as text, a client that meant JSON got cited prose.
    (
        "a response_format without its type",
        {"response_format": {}},
        "response_format.type",
        "missing_required_parameter",
        "Missing required parameter: 'response_format.type'.",
    ),
    (
        "an unknown response_format",
        {"response_format": {"type": "bogus"}},
        "response_format.type",
        "invalid_value",
        "'text', 'json_object', and 'json_schema'",
    ),
    # Accepted, a client that meant to stream got one reply, and no usage chunk. OpenAI's answer has no code.
    (
        "stream_options without stream",
        {"stream_options": {"include_usage": True}},
        "stream_options",
        None,
        "only allowed when 'stream' is enabled",
    ),
    (
        "stream_options with stream false",
        {"stream": False, "stream_options": {}},
        "stream_options",
        None,
        "only allowed when 'stream' is enabled",
    ),
    # Accepted, a client that meant to ask for logprobs was answered without them, and no refusal.
    ("top_logprobs without logprobs", {"top_logprobs": 2}, "top_logprobs", None, "'logprobs' is true"),
    (
        "top_logprobs with logprobs false",
        {"logprobs": False, "top_logprobs": 0},
        "top_logprobs",
        None,
        "'logprobs' is true",
    ),
]


@pytest.mark.parametrize(
    ("case", "fragment", "param", "code", "says"), INVALID_VALUES, ids=[c[0] for c in INVALID_VALUES]
)
def test_a_value_openai_refuses_is_refused_naming_the_parameter(api, case, fragment, param, code, says):
    error = refused(api.url, {"model": "kilde", "messages": QUESTION, **fragment})
    assert error["param"] == param and error["code"] == code and says in error["message"], error


# Each number OpenAI bounds, just outside its range, with OpenAI's code and words. `top_logprobs` was not held to
# 0–20 at all (21 beside `"logprobs": true` was refused for the logprobs, 21 alone for wanting them), nor `seed`
# to an int64 (2**63 was answered), and `n` 0 was "n must be 1"; the rest were Kilde's `invalid_request`.
OUT_OF_RANGE = [
    ("temperature", 2.5, "decimal_above_max_value", "<= 2, but got 2.5"),
    ("temperature", -1, "decimal_below_min_value", ">= 0, but got -1"),
    ("top_p", 1.01, "decimal_above_max_value", "<= 1, but got 1.01"),
    ("top_p", -0.5, "decimal_below_min_value", ">= 0, but got -0.5"),
    ("presence_penalty", 3, "decimal_above_max_value", "<= 2, but got 3"),
    ("presence_penalty", -2.5, "decimal_below_min_value", ">= -2, but got -2.5"),
    ("frequency_penalty", 2.01, "decimal_above_max_value", "<= 2, but got 2.01"),
    ("frequency_penalty", -3, "decimal_below_min_value", ">= -2, but got -3"),
    ("max_tokens", 0, "integer_below_min_value", ">= 1, but got 0"),
    ("max_completion_tokens", -5, "integer_below_min_value", ">= 1, but got -5"),
    ("n", 0, "integer_below_min_value", ">= 1, but got 0"),
    ("n", -1, "integer_below_min_value", ">= 1, but got -1"),
    ("top_logprobs", 21, "integer_above_max_value", "<= 20, but got 21"),
    ("top_logprobs", -1, "integer_below_min_value", ">= 0, but got -1"),
    ("seed", 2**63, "integer_above_max_value", f"<= {2**63 - 1}, but got {2**63}"),
    ("seed", -(2**63) - 1, "integer_below_min_value", f">= {-(2**63)}, but got {-(2**63) - 1}"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    ("param", "value", "code", "says"), OUT_OF_RANGE, ids=[f"{p}={v}" for p, v, *_ in OUT_OF_RANGE]
)
def test_a_number_out_of_openais_range_is_refused_with_openais_code(api, param, value, code, says, stream):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    logprobs = {"logprobs": True} if param == "top_logprobs" else {}  # the range is told before the pairing
    with pytest.raises(openai.BadRequestError) as caught:
        chat.completions.create(model="kilde", messages=QUESTION, stream=stream, **logprobs, **{param: value})
    error = caught.value
    assert (error.param, error.code, error.type) == (param, code, "invalid_request_error"), error.body
    side = "below minimum" if "below" in code else "above maximum"
    kind = code.split("_")[0]
    assert (
        error.body["message"] == f"Invalid '{param}': {kind} {side} value. Expected a value {says} instead."
    )


@pytest.mark.parametrize(
    ("bias", "code", "says"), [(101, "above_max", "<= 100"), (-101, "below_min", ">= -100")]
)
def test_a_logit_bias_out_of_openais_range_is_refused_naming_its_token(api, bias, code, says):
    # Ignored, so answered: a client's bias OpenAI's API refuses went unseen.
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    with pytest.raises(openai.BadRequestError) as caught:
        chat.completions.create(model="kilde", messages=QUESTION, logit_bias={"50256": 0, "1734": bias})
    error = caught.value
    assert (error.param, error.code) == ("logit_bias.1734", f"integer_{code}_value"), error.body
    assert says in error.body["message"]
    for wrong in ("-100", 1.5):
        assert refused(api.url, {"model": "kilde", "messages": QUESTION, "logit_bias": {"1734": wrong}})[
            "param"
        ] == ("logit_bias.1734")


# Keys that are no token id: answered, where OpenAI's API refuses them in these words, `param` `logit_bias` and no
# code (its recorded answers: "Invalid key in 'logit_bias': AI. You should only be submitting non-negative
# integers.", openai-python's issue 572 and others).
NOT_TOKEN_IDS = ["abc", "-1", "1.5", "", " 12", "1e3", "\u0661\u0662"]


@pytest.mark.parametrize("key", NOT_TOKEN_IDS, ids=[repr(k) for k in NOT_TOKEN_IDS])
def test_a_logit_bias_key_that_is_no_token_id_is_refused_naming_logit_bias(api, key):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    with pytest.raises(openai.BadRequestError) as caught:
        chat.completions.create(model="kilde", messages=QUESTION, logit_bias={"1734": 5, key: 5})
    error = caught.value
    assert (error.param, error.code, error.type) == ("logit_bias", None, "invalid_request_error"), error.body
    assert error.body["message"] == (
        f"Invalid key in 'logit_bias': {key}. You should only be submitting non-negative integers."
    )


def test_numbers_at_the_ends_of_openais_ranges_are_answered(api):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    low = dict(temperature=0, top_p=0, presence_penalty=-2, frequency_penalty=-2.0, n=1, seed=-(2**63))
    high = dict(
        temperature=2, top_p=1.0, presence_penalty=2, frequency_penalty=2, max_tokens=1, seed=2**63 - 1
    )
    low["logit_bias"], high["logit_bias"] = {"0": -100, "1734": -100}, {"1734": 100, "200018": 100}
    for ends in (low, high):
        reply = chat.completions.create(model="kilde", messages=QUESTION, **ends)
        assert reply.choices[0].message.content, ends
    # 0 and 20 are in range: refused only for the logprobs Kilde cannot give
    for top in (0, 20):
        with pytest.raises(openai.BadRequestError) as caught:
            chat.completions.create(model="kilde", messages=QUESTION, logprobs=True, top_logprobs=top)
        assert (caught.value.param, caught.value.code) == ("logprobs", "unsupported_parameter")


# The name of a function an assistant called earlier, which OpenAI's API holds to a tool's pattern and length
# ("Invalid 'messages[9].tool_calls[0].function.name': string does not match pattern. …", mcp-use/mcp-use issue 90):
# a client that replays a call under a name OpenAI refuses meets the refusal here.
@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        (
            "get weather",
            "invalid_value",
            "string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
        ),
        (
            "tools.get_weather",
            "invalid_value",
            "string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
        ),
        # OpenAI's words for it (continuedev/continue issue 11645; its code unrecorded, `empty_string` as Kilde's for
        # an empty `stop`): it was "string does not match pattern" (round twenty-seven).
        (
            "",
            "empty_string",
            "empty string. Expected a string with minimum length 1, but got an empty string instead.",
        ),
        (
            "f" * 65,
            "string_above_max_length",
            "string too long. Expected a string with maximum length 64, but got a string with length 65 instead.",
        ),
    ],
    ids=["space", "dot", "empty", "65 characters"],
)
def test_a_called_function_name_openai_refuses_is_refused_naming_its_path(api, name, code, says):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    second = {**CALL, "id": "call_2", "function": {"name": name, "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL, second]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Sunny"},
        *QUESTION,
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        chat.completions.create(model="kilde", messages=messages)
    error = caught.value
    param = "messages[1].tool_calls[1].function.name"
    assert (error.param, error.code) == (param, code), error.body
    assert error.body["message"] == f"Invalid '{param}': {says}"
    messages[1]["tool_calls"][1]["function"]["name"] = "f" * 64
    reply = chat.completions.create(model="kilde", messages=messages)
    assert "[1]" in reply.choices[0].message.content


def calls_then_question(second: dict) -> list[dict]:
    """A chat whose assistant message made two calls, `second` the other one, each answered, then the question."""
    return [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL, second]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Sunny"},
        *QUESTION,
    ]


def function_call_then_question(function_call: dict) -> list[dict]:
    """A chat whose assistant message made the deprecated `function_call`, answered by a function message."""
    return [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "function_call": function_call},
        {"role": "function", "name": "get_weather", "content": "Sunny"},
        *QUESTION,
    ]


SECOND = {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
CALLED = "messages[1].tool_calls[1]"
# An earlier call's own shape, which OpenAI's API holds each call to (openai-python's
# `ChatCompletionMessageToolCallUnionParam`, `FunctionCall`), in its words and codes where they are recorded: "Invalid
# type for 'messages[2].tool_calls[0].function.arguments': expected a string, but got an object instead."
# (`invalid_type`, aaif-goose/goose-mobile pull 20), "Missing required parameter:
# 'messages[2].tool_calls[0].type'." (langchain-ai/langchain-azure issue 35), "Missing required parameter:
# 'messages[1].tool_calls[1].function.arguments'." (mark3labs/mcphost issue 117), "Invalid 'messages[1].tool_calls':
# empty array. …" (`empty_array`, home-assistant/core pull 118577, openai/openai-python issue 2061). Each was
# answered: a call is not read, so a client's history that OpenAI refuses went unseen.
BAD_CALLS = [
    (
        "a call without its id",
        calls_then_question({k: v for k, v in SECOND.items() if k != "id"}),
        f"{CALLED}.id",
        "missing_required_parameter",
        f"Missing required parameter: '{CALLED}.id'.",
    ),
    (
        "an id that is a number",
        calls_then_question({**SECOND, "id": 2}),
        f"{CALLED}.id",
        "invalid_type",
        f"Invalid type for '{CALLED}.id': expected a string, but got an integer instead.",
    ),
    (
        "a call without its type",
        calls_then_question({k: v for k, v in SECOND.items() if k != "type"}),
        f"{CALLED}.type",
        "missing_required_parameter",
        f"Missing required parameter: '{CALLED}.type'.",
    ),
    (
        "a call of another type",
        calls_then_question({**SECOND, "type": "tool"}),
        f"{CALLED}.type",
        "invalid_value",
        f"Invalid value for '{CALLED}.type': 'tool'. Supported values are: 'function' and 'custom'.",
    ),
    (
        "a function call without its function",
        calls_then_question({"id": "call_2", "type": "function"}),
        f"{CALLED}.function",
        "missing_required_parameter",
        f"Missing required parameter: '{CALLED}.function'.",
    ),
    (
        "a function that is a string",
        calls_then_question({**SECOND, "function": "get_weather"}),
        f"{CALLED}.function",
        "invalid_type",
        f"Invalid type for '{CALLED}.function': expected an object, but got a string instead.",
    ),
    (
        "arguments sent as an object",
        calls_then_question({**SECOND, "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}),
        f"{CALLED}.function.arguments",
        "invalid_type",
        f"Invalid type for '{CALLED}.function.arguments': expected a string, but got an object instead.",
    ),
    (
        "a call without its arguments",
        calls_then_question({**SECOND, "function": {"name": "get_weather"}}),
        f"{CALLED}.function.arguments",
        "missing_required_parameter",
        f"Missing required parameter: '{CALLED}.function.arguments'.",
    ),
    (
        "null arguments",
        calls_then_question({**SECOND, "function": {"name": "get_weather", "arguments": None}}),
        f"{CALLED}.function.arguments",
        "invalid_type",
        f"Invalid type for '{CALLED}.function.arguments': expected a string, but got null instead.",
    ),
    (
        "a function without its name",
        calls_then_question({**SECOND, "function": {"arguments": "{}"}}),
        f"{CALLED}.function.name",
        "missing_required_parameter",
        f"Missing required parameter: '{CALLED}.function.name'.",
    ),
    (
        "a name that is a number",
        calls_then_question({**SECOND, "function": {"name": 7, "arguments": "{}"}}),
        f"{CALLED}.function.name",
        "invalid_type",
        f"Invalid type for '{CALLED}.function.name': expected a string, but got an integer instead.",
    ),
    (
        "a custom call without its input",
        calls_then_question({"id": "call_2", "type": "custom", "custom": {"name": "run_sql"}}),
        f"{CALLED}.custom.input",
        "missing_required_parameter",
        f"Missing required parameter: '{CALLED}.custom.input'.",
    ),
    (
        "no calls beside text",
        [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": []},
            *QUESTION,
        ],
        "messages[1].tool_calls",
        "empty_array",
        "Invalid 'messages[1].tool_calls': empty array. Expected an array with minimum length 1, but got an empty "
        "array instead.",
    ),
    # The deprecated `function_call` of an assistant message: a function's name as a tool's (openai-python types it
    # as `FunctionCall`, `name` and `arguments` both required strings); OpenAI's answer for it was not found, so
    # its words for a tool call's.
    (
        "a function_call name with a space",
        function_call_then_question({"name": "get weather", "arguments": "{}"}),
        "messages[1].function_call.name",
        "invalid_value",
        f"Invalid 'messages[1].function_call.name': string does not match pattern. {NAME_PATTERN}",
    ),
    (
        "a function_call without its arguments",
        function_call_then_question({"name": "get_weather"}),
        "messages[1].function_call.arguments",
        "missing_required_parameter",
        "Missing required parameter: 'messages[1].function_call.arguments'.",
    ),
    (
        "function_call arguments sent as an object",
        function_call_then_question({"name": "get_weather", "arguments": {}}),
        "messages[1].function_call.arguments",
        "invalid_type",
        "Invalid type for 'messages[1].function_call.arguments': expected a string, but got an object instead.",
    ),
    (
        "a function_call without its name",
        function_call_then_question({"arguments": "{}"}),
        "messages[1].function_call.name",
        "missing_required_parameter",
        "Missing required parameter: 'messages[1].function_call.name'.",
    ),
]


@pytest.mark.parametrize(
    ("case", "messages", "param", "code", "says"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS]
)
def test_an_earlier_call_openai_refuses_is_refused_naming_its_path(api, case, messages, param, code, says):
    assert_refused(api, {"messages": messages}, param, code, says)
    assert_refused(api, {"messages": messages, "stream": True}, param, code, says)


def test_earlier_calls_of_each_shape_openai_takes_are_answered(api):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    custom = {"id": "call_2", "type": "custom", "custom": {"name": "run_sql", "input": "select 1"}}
    for messages in (
        calls_then_question(SECOND),
        calls_then_question(custom),
        function_call_then_question({"name": "get_weather", "arguments": '{"city": "Oslo"}'}),
    ):
        reply = chat.completions.create(model="kilde", messages=messages)
        assert "[1]" in reply.choices[0].message.content


def test_an_earlier_call_with_an_empty_id_or_arguments_that_are_not_json_is_answered(api):
    # Held as OpenAI's API is known to hold them: no answer of its refusing an empty call id, or `arguments` that are
    # no JSON, was found (an empty function name is refused, `empty_string`, above), and a client replays a model's
    # malformed arguments as they came (myriade-ai/agentlys pull 343). The call's id pairs with its tool message.
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    for arguments in ("{", "", "not json"):
        call = {"id": "", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
        messages = [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "", "content": "Sunny"},
            *QUESTION,
        ]
        reply = chat.completions.create(model="kilde", messages=messages)
        assert "[1]" in reply.choices[0].message.content, arguments
    unpaired = [*messages[:2], {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}, *QUESTION]
    says = "Invalid parameter: 'tool_call_id' of 'call_1' not found in 'tool_calls' of previous message."
    assert_refused(api, {"messages": unpaired}, "messages[2].tool_call_id", None, says)


# The deprecated `functions` and `function_call` parameters as OpenAI's API holds them: `function_call` only beside
# `functions` ("Invalid value for 'function_call': 'function_call' is only allowed when 'functions' are specified.",
# `param` `function_call`, code null: PlexPt/chatgpt-java issue 150, Azure-Samples/azure-search-openai-demo pull
# 1175), a function named by a string `name` (openai-python's `ChatCompletionFunctionCallOptionParam`), and neither
# list empty ("Invalid 'tools': empty array. …", `empty_array`: continuedev/continue issue 3370, vllm-project/vllm
# pull 39780; an empty `functions` was "[] is too short - 'functions'" in OpenAI's older words,
# HaroldPetersInskipp/node-red-contrib-chatgpt issue 18). Each was answered, or refused as a function call Kilde cannot
# make, whatever it named.
ONLY_BESIDE_FUNCTIONS = (
    "Invalid value for 'function_call': 'function_call' is only allowed when 'functions' are specified."
)
FUNCTION = {"name": "get_weather", "parameters": {"type": "object"}}
DEPRECATED_FUNCTIONS = [
    (
        "function_call auto without functions",
        {"function_call": "auto"},
        "function_call",
        None,
        ONLY_BESIDE_FUNCTIONS,
    ),
    (
        "function_call none without functions",
        {"function_call": "none"},
        "function_call",
        None,
        ONLY_BESIDE_FUNCTIONS,
    ),
    (
        "a function named without functions",
        {"function_call": {"name": "get_weather"}},
        "function_call",
        None,
        ONLY_BESIDE_FUNCTIONS,
    ),
    (
        "function_call auto beside null functions",
        {"functions": None, "function_call": "auto"},
        "function_call",
        None,
        ONLY_BESIDE_FUNCTIONS,
    ),
    (
        "a function_call object without its name",
        {"functions": [FUNCTION], "function_call": {}},
        "function_call.name",
        "missing_required_parameter",
        "Missing required parameter: 'function_call.name'.",
    ),
    (
        "a function_call name that is a number",
        {"functions": [FUNCTION], "function_call": {"name": 5}},
        "function_call.name",
        "invalid_type",
        "Invalid type for 'function_call.name': expected a string, but got an integer instead.",
    ),
    (
        "no functions",
        {"functions": []},
        "functions",
        "empty_array",
        "Invalid 'functions': empty array. Expected an array with minimum length 1, but got an empty array instead.",
    ),
    (
        "no tools",
        {"tools": []},
        "tools",
        "empty_array",
        "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.",
    ),
]


@pytest.mark.parametrize(
    ("case", "fragment", "param", "code", "says"),
    DEPRECATED_FUNCTIONS,
    ids=[c[0] for c in DEPRECATED_FUNCTIONS],
)
def test_the_deprecated_function_parameters_openai_refuses_are_refused_naming_them(
    api, case, fragment, param, code, says
):
    assert_refused(api, fragment, param, code, says)
    assert_refused(api, {**fragment, "stream": True}, param, code, says)


def test_function_call_none_or_auto_beside_functions_is_answered(api):
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    for choice in ("none", "auto", None):
        reply = chat.completions.create(
            model="kilde", messages=QUESTION, functions=[FUNCTION], function_call=choice
        )
        assert "[1]" in reply.choices[0].message.content


# `tool_choice` and `parallel_tool_calls` as OpenAI's API holds them: only beside `tools`, in its words, `param` the
# parameter, code null ("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.":
# dapr/dapr-agents issue 248, for "auto"; "Invalid value for 'parallel_tool_calls': …": openai/swarm issue 30 and
# openai/openai-openapi pull 287 for true, openai/openai-agents-python pull 4359 for false). Each was answered, or
# refused as a call Kilde cannot make: a client's agent whose tools were all stripped went unseen here.
ONLY_BESIDE_TOOLS = [
    ("tool_choice auto without tools", {"tool_choice": "auto"}, "tool_choice"),
    ("tool_choice required without tools", {"tool_choice": "required"}, "tool_choice"),
    (
        "a named tool without tools",
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        "tool_choice",
    ),
    (
        "tool_choice auto beside functions alone",
        {"functions": [FUNCTION], "tool_choice": "auto"},
        "tool_choice",
    ),
    ("parallel_tool_calls true without tools", {"parallel_tool_calls": True}, "parallel_tool_calls"),
    ("parallel_tool_calls false without tools", {"parallel_tool_calls": False}, "parallel_tool_calls"),
    (
        "parallel_tool_calls beside null tools",
        {"tools": None, "parallel_tool_calls": False},
        "parallel_tool_calls",
    ),
]


@pytest.mark.parametrize(
    ("case", "fragment", "param"), ONLY_BESIDE_TOOLS, ids=[c[0] for c in ONLY_BESIDE_TOOLS]
)
def test_a_tool_parameter_without_tools_is_refused_in_openais_words(api, case, fragment, param):
    says = f"Invalid value for '{param}': '{param}' is only allowed when 'tools' are specified."
    assert_refused(api, fragment, param, None, says)
    assert_refused(api, {**fragment, "stream": True}, param, None, says)


def test_tool_choice_none_without_tools_and_both_beside_tools_are_answered(api):
    # "none" without tools: no answer of OpenAI's refusing it was found, and OpenAI-compatible servers take it
    # (vllm-project/vllm pull 10000)
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    for extra in (
        {"tool_choice": "none"},
        {"tool_choice": None, "parallel_tool_calls": None},
        {"tools": [TOOL], "tool_choice": "none", "parallel_tool_calls": True},
        {
            "tools": [TOOL],
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
        },
    ):
        reply = chat.completions.create(model="kilde", messages=QUESTION, extra_body=extra)
        assert "[1]" in reply.choices[0].message.content, extra


# A call in a message of another role than the assistant's: answered, the call ignored, where OpenAI's API refuses a
# `function_call` there ("Invalid parameter: only messages with role 'assistant' can have a function call.",
# microsoft/autogen issue 113; its `param` and code unrecorded). `tool_calls` there is refused in the same words, its
# answer unrecorded.
@pytest.mark.parametrize(
    ("role", "field", "value", "what"),
    [
        ("user", "function_call", {"name": "get_weather", "arguments": "{}"}, "a function call"),
        ("system", "function_call", {"name": "get_weather", "arguments": "{}"}, "a function call"),
        ("user", "tool_calls", [CALL], "tool calls"),
        ("developer", "tool_calls", [CALL], "tool calls"),
    ],
    ids=[
        "function_call of a user",
        "function_call of a system message",
        "tool_calls of a user",
        "tool_calls of a developer",
    ],
)
def test_a_call_off_an_assistant_message_is_refused_naming_it(api, role, field, value, what):
    messages = [
        {"role": role, "content": "Weather?", field: value},
        {"role": "assistant", "content": "Sunny."},
        *QUESTION,
    ]
    says = f"Invalid parameter: only messages with role 'assistant' can have {what}."
    assert_refused(api, {"messages": messages}, f"messages[0].{field}", None, says)
    messages[0][field] = None  # null: not given
    chat = openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120).chat
    assert "[1]" in chat.completions.create(model="kilde", messages=messages).choices[0].message.content
