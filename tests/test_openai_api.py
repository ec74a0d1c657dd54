"""`/v1/chat/completions` and `/v1/models`, driven by the official `openai` client (sync, async, streaming) and
LangChain's `ChatOpenAI`, against the real app served by uvicorn on a loopback port over the small real index."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from assistant.core.tokens import get_encoding
from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, DEMO_QUESTION_NB, SEED_ID
from assistant.testing.servers import ThreadServer
from tests.held import Held

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(built_index, assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(built_index.replace(rate_limit_per_minute=1000), assistant)).start()
    yield server
    server.stop()


def client(url: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120, **kw)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_models_lists_the_one_model(api):
    models = client(api.url).models.list()
    assert [m.id for m in models.data] == ["kilde"]
    assert client(api.url).models.retrieve("kilde").id == "kilde"
    with pytest.raises(openai.NotFoundError) as caught:
        client(api.url).models.retrieve("gpt-4o")
    assert (caught.value.code, caught.value.param) == (
        "model_not_found",
        "model",
    )  # OpenAI's; was `not_found`


def test_completion_is_the_cited_answer_with_sources_and_structured_citations(api, assistant):
    from assistant.answering.context import AskRequest

    reply = client(api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_NB))
    expected = assistant.ask(AskRequest(DEMO_QUESTION_NB))
    content = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    assert content.startswith(expected.answer) and "[1]" in content
    assert "\n\nKilder:\n[1] " in content  # a Norwegian question gets a Norwegian heading
    kilde = reply.model_extra["kilde"]
    assert kilde["answerable"] and kilde["citations"][0]["article_id"] == SEED_ID
    first = kilde["citations"][0]
    article = httpx.get(f"{api.url}/api/articles/{first['article_id']}").json()
    assert article["text"][first["start"] : first["end"]] == first["quote"]
    assert first["quote"].startswith(ARTICLE4_OPENING)
    assert f"[1] {first['title']}" in content


def test_streaming_sends_the_same_content_then_done(api):
    plain = client(api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
    stream = client(api.url).chat.completions.create(
        model="kilde", messages=user(DEMO_QUESTION_EN), stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3  # pieces, not one block
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["kilde"]["citations"] == plain.model_extra["kilde"]["citations"]
    # On the wire: server-sent events, each `data: {json}`, the last `data: [DONE]`.
    with httpx.stream(
        "POST",
        api.url + "/v1/chat/completions",
        timeout=120,
        json={"model": "kilde", "messages": user(DEMO_QUESTION_EN), "stream": True},
    ) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        events = [line for line in raw.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_async_client_plain_and_streaming(api):
    async def run():
        aclient = openai.AsyncOpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        plain, stream = await asyncio.gather(
            aclient.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN)),
            aclient.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN), stream=True),
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await aclient.close()
        return plain, text

    plain, text = asyncio.run(run())
    assert text == plain.choices[0].message.content and "[1]" in text


def test_earlier_messages_are_the_history(api):
    first = client(api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
    follow = client(api.url).chat.completions.create(
        model="kilde",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            *user(DEMO_QUESTION_EN),
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": [{"type": "text", "text": "And what about nuclear weapons?"}]},
        ],
    )
    kilde = follow.model_extra["kilde"]
    assert kilde["question"] == "And what about nuclear weapons?"
    # The history reaches the assistant: the follow-up is searched together with what it refers back to.
    assert kilde["standalone_question"].startswith("And what about nuclear weapons?")
    assert "Article 4" in kilde["standalone_question"]


def test_filters_extension_narrows_the_archive(api):
    reply = client(api.url).chat.completions.create(
        model="kilde", messages=user(DEMO_QUESTION_EN), extra_body={"filters": {"until": "2000-01-01"}}
    )
    assert not reply.model_extra["kilde"]["answerable"]
    # no passage the filter keeps names the article the question asks about
    assert reply.choices[0].message.content == (
        "I couldn't find this in the archive. No passage I found names «Article 4»."
    )


def test_langchain_chat_openai_invokes_and_streams(api):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=api.url + "/v1", api_key="unused", model="kilde", max_retries=0, timeout=120)
    message = chat.invoke(DEMO_QUESTION_EN)
    assert "[1]" in message.content and "Sources:\n[1] " in message.content
    streamed = "".join(chunk.content for chunk in chat.stream(DEMO_QUESTION_EN))
    assert streamed == message.content
    chain = (
        ChatPromptTemplate.from_messages([("system", "Answer from the archive."), ("human", "{q}")])
        | chat
        | StrOutputParser()
    )
    assert chain.invoke({"q": DEMO_QUESTION_EN}) == message.content
    assert asyncio.run(chat.ainvoke(DEMO_QUESTION_EN)).content == message.content


# -- bad input: OpenAI's typed errors ---------------------------------------------------------------------

# Each with OpenAI's code: a value refused where OpenAI has no code of its own for the fault is `invalid_value`
# (all were Kilde's `bad_request` or `invalid_request`, which no OpenAI client knows).
BAD_REQUESTS = [
    ("empty question", {"messages": user("   ")}, "question", "invalid_value"),
    ("no messages", {"messages": []}, "messages", "empty_array"),
    (
        "last message not the user's",
        {"messages": [*user("hi"), {"role": "assistant", "content": "x"}]},
        "last message must be the user's question, not one of role 'assistant'",
        "invalid_value",
    ),
    (
        "image part",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
                }
            ]
        },
        "text only",
        "invalid_value",
    ),
    ("n > 1", {"messages": user(DEMO_QUESTION_EN), "n": 2}, "n must be 1", "unsupported_value"),
    ("too long", {"messages": user("x" * 2001)}, "limit is 2000", "invalid_value"),
    ("bad role", {"messages": [{"role": "wizard", "content": "x"}]}, "role", "invalid_value"),
    (
        "bad filter date",
        {"messages": user(DEMO_QUESTION_EN), "extra_body": {"filters": {"since": "soon"}}},
        "not a date",
        "invalid_value",
    ),
    (
        "unknown filter",
        {"messages": user(DEMO_QUESTION_EN), "extra_body": {"filters": {"colour": "red"}}},
        "colour",
        "unknown_parameter",
    ),
    # Refused while answering, not before: it was Kilde's `bad_request`, with no `param`.
    (
        "a source no article has",
        {"messages": user(DEMO_QUESTION_EN), "extra_body": {"filters": {"sources": ["Geopolitka"]}}},
        "no article has the source 'Geopolitka'",
        "invalid_value",
    ),
    (
        "a language no article is in",
        {"messages": user(DEMO_QUESTION_EN), "extra_body": {"filters": {"languages": ["en"]}}},
        "no article is in the language 'en'; the archive's languages: 'nb'",
        "invalid_value",
    ),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("case", "kwargs", "says", "code"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_is_a_bad_request_error(api, case, kwargs, says, code, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(model="kilde", stream=stream, **kwargs)
    error = caught.value
    assert error.status_code == 400 and says in error.message, error.message
    assert error.type == "invalid_request_error" and error.code == code
    assert error.param  # OpenAI names the parameter at fault
    if case == "a source no article has":
        assert error.param == "filters.sources"
    if case == "a language no article is in":
        assert error.param == "filters.languages"
    assert "Traceback" not in error.response.text


# With OpenAI's code for a model that lacks what is asked (they were Kilde's `bad_request`, `invalid_request`).
WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
UNHONOURABLE = [
    ("json mode", {"response_format": {"type": "json_object"}}, "response_format", "unsupported_value"),
    (
        "json schema",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {"type": "object"}},
            }
        },
        "response_format",
        "unsupported_value",
    ),
    ("a tool call required", {"tool_choice": "required"}, "tool_choice", "unsupported_value"),
    (
        "a named tool",
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        "tool_choice",
        "unsupported_value",
    ),
    # Not an object where OpenAI puts one: the server failed with a 500 reading its "mode".
    (
        "allowed tools as a string",
        {"tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}},
        "tool_choice",
        "unsupported_value",
    ),
    (
        "allowed tools as a list",
        {"tool_choice": {"type": "allowed_tools", "allowed_tools": ["auto"]}},
        "tool_choice",
        "unsupported_value",
    ),
    # The deprecated way to force a call (older clients' structured output): answered with text, read as no call.
    (
        "a named function",
        {"functions": [WEATHER[0]["function"]], "function_call": {"name": "get_weather"}},
        "function_call",
        "unsupported_value",
    ),
    ("logprobs", {"logprobs": True, "top_logprobs": 2}, "logprobs", "unsupported_parameter"),
    ("temperature above 2", {"temperature": 5}, "temperature", "decimal_above_max_value"),
    ("top_p below 0", {"top_p": -0.5}, "top_p", "decimal_below_min_value"),
    ("max_tokens 0", {"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
]


@pytest.mark.parametrize(("case", "kwargs", "param", "code"), UNHONOURABLE, ids=[c[0] for c in UNHONOURABLE])
def test_what_kilde_cannot_honour_is_refused_naming_the_parameter(api, case, kwargs, param, code):
    # Answered with cited text, a JSON-mode client failed parsing it, far from the cause.
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(
            model="kilde", messages=user(DEMO_QUESTION_EN), tools=WEATHER, **kwargs
        )
    assert caught.value.param == param and param in caught.value.message
    assert caught.value.code == code


def test_what_kilde_can_ignore_is_accepted_and_null_is_not_given(api):
    reply = client(api.url).chat.completions.create(
        model="kilde",
        messages=user(DEMO_QUESTION_EN),
        tools=WEATHER,
        tool_choice="auto",
        functions=[WEATHER[0]["function"]],
        function_call="auto",
        response_format={"type": "text"},
        temperature=0.2,
        max_tokens=4096,
        seed=7,
        user="someone",
        n=None,  # OpenAI reads null as "not given"; some clients send it
        stream=None,
    )
    assert "[1]" in reply.choices[0].message.content


def test_langchain_structured_output_is_an_error_not_none(api):
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class Reply(BaseModel):
        answer: str

    chat = ChatOpenAI(base_url=api.url + "/v1", api_key="unused", model="kilde", max_retries=0, timeout=120)
    # Function calling forces a tool Kilde never calls: LangChain returned None, with no error.
    for method in ("function_calling", "json_schema", "json_mode"):
        with pytest.raises(openai.BadRequestError):
            chat.with_structured_output(Reply, method=method).invoke(DEMO_QUESTION_EN)


def test_usage_counts_the_messages_read_and_the_reply_with_tiktoken(api, built_index):
    from assistant.core.tokens import get_encoding

    encoding = get_encoding("o200k_base", built_index.tiktoken_cache_dir)
    messages = [
        {"role": "system", "content": "Answer from the archive."},  # ignored, so not counted
        {"role": "user", "content": [{"type": "text", "text": DEMO_QUESTION_EN}]},
    ]
    sent = len(encoding.encode(DEMO_QUESTION_EN))
    plain = client(api.url).chat.completions.create(model="kilde", messages=messages)
    content = plain.choices[0].message.content
    assert plain.usage.prompt_tokens == sent
    assert plain.usage.completion_tokens == len(encoding.encode(content))
    assert plain.usage.total_tokens == sent + plain.usage.completion_tokens
    chunks = list(
        client(api.url).chat.completions.create(
            model="kilde", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage  # the stream's usage was null
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=api.url + "/v1", api_key="unused", model="kilde", max_retries=0, timeout=120)
    assert chat.invoke(DEMO_QUESTION_EN).usage_metadata["output_tokens"] == len(encoding.encode(content))


# -- max_tokens and stop cut the reply as a model that stopped there would have written it -----------------

TWO_SOURCES_QUESTION = "Who signed the pact between Russia and North Korea, and when?"


def cut_reply(
    api, stream: bool, question: str = TWO_SOURCES_QUESTION, **limits
) -> tuple[str, str, dict, openai.types.CompletionUsage]:
    """The content, finish reason, `kilde` field and usage of one reply to `question`, plain or streamed."""
    create = client(api.url).chat.completions.create
    if not stream:
        reply = create(model="kilde", messages=user(question), **limits)
        choice = reply.choices[0]
        return choice.message.content, choice.finish_reason, reply.model_extra["kilde"], reply.usage
    chunks = list(
        create(
            model="kilde",
            messages=user(question),
            stream=True,
            stream_options={"include_usage": True},
            **limits,
        )
    )
    with_choices = [c for c in chunks if c.choices]
    finished = [c for c in with_choices if c.choices[0].finish_reason]
    assert finished == with_choices[-1:]  # no text after the chunk that says why the reply ended
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    return text, finished[0].choices[0].finish_reason, finished[0].model_extra["kilde"], chunks[-1].usage


@pytest.fixture(scope="module")
def whole_reply(api):
    content, finish, kilde, _ = cut_reply(api, stream=False)
    # The cases below cut between this answer's two cited sentences.
    assert finish == "stop" and [c["n"] for c in kilde["citations"]] == [1, 2], content
    assert content.index("[1]") < content.index("[2]") < content.index("\n\nSources:\n[1] ")
    return content, kilde


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_the_reply_and_its_sources_to_what_is_shown(
    api, built_index, whole_reply, stream, name
):
    # They were held to OpenAI's range, then ignored: a client that asked for 20 tokens got the whole reply.
    o200k = get_encoding("o200k_base", built_index.tiktoken_cache_dir)
    whole, whole_kilde = whole_reply
    first_cited = whole[
        : whole.index("[1]") + len("[1]")
    ]  # the first sentence and its marker, not the second
    limit = len(o200k.encode(first_cited))
    content, finish, kilde, usage = cut_reply(api, stream, **{name: limit})
    assert content == first_cited == o200k.decode(o200k.encode(whole)[:limit])
    assert finish == "length"
    assert usage.completion_tokens == limit and usage.total_tokens == usage.prompt_tokens + limit
    # The structured answer lists only the source the text still cites, as the sources list it lost would.
    assert kilde["citations"] == whole_kilde["citations"][:1]
    assert kilde["sentences"] == whole_kilde["sentences"][:1]
    assert kilde["answer"] == content and kilde["partial"] is True
    # A cut inside the first marker cites nothing.
    content, finish, kilde, usage = cut_reply(api, stream, **{name: limit - 1})
    assert content == o200k.decode(o200k.encode(whole)[: limit - 1]) and "[1]" not in content
    assert finish == "length" and usage.completion_tokens == limit - 1
    assert kilde["citations"] == [] and kilde["sentences"] == [
        {**whole_kilde["sentences"][0], "citations": []}
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_smaller_token_limit_holds_and_a_larger_one_changes_nothing(api, whole_reply, stream):
    whole, whole_kilde = whole_reply
    content, finish, kilde, _ = cut_reply(api, stream, max_tokens=4096, max_completion_tokens=3)
    assert finish == "length" and content and whole.startswith(content) and kilde["citations"] == []
    content, finish, kilde, _ = cut_reply(api, stream, max_tokens=4096)
    assert (content, finish) == (whole, "stop") and kilde["citations"] == whole_kilde["citations"]
    assert kilde["partial"] is False


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_stop_ends_the_reply_before_the_first_stop_sequence(api, built_index, whole_reply, stream):
    o200k = get_encoding("o200k_base", built_index.tiktoken_cache_dir)
    whole, whole_kilde = whole_reply
    answer = whole[: whole.index("\n\nSources:")]
    # Before the sources list: the answer text whole, both its sources still in the structured answer.
    content, finish, kilde, usage = cut_reply(api, stream, stop="\n\n")
    assert (content, finish) == (answer, "stop") and kilde == {
        **whole_kilde,
        "timings_ms": kilde["timings_ms"],
    }
    assert usage.completion_tokens == len(o200k.encode(answer))
    # Across the pieces a stream sends, and the first of the sequences to appear: the second marker goes.
    second = whole.index("[2]")
    across = whole[second - 9 : second + 2]  # "Reuters. [2": words and a marker's start, sent apart
    content, finish, kilde, _ = cut_reply(api, stream, stop=["Kilder:", "[2]", across])
    assert (content, finish) == (whole[: second - 9], "stop")
    assert kilde["citations"] == whole_kilde["citations"][:1]
    assert kilde["sentences"] == whole_kilde["sentences"][:1]  # the second is no longer shown whole
    # A text held back as the start of a stop sequence that never comes is sent after all.
    content, finish, _, _ = cut_reply(api, stream, stop=[answer[-6:] + "!", whole[-3:] + "?"])
    assert (content, finish) == (whole, "stop")
    # `[]` is no stop sequences: OpenAI's reference sets no minimum, and its API answered it in the reports found
    # (one has it refused beside a picture)
    assert cut_reply(api, stream, stop=[])[:2] == (whole, "stop")


@pytest.mark.parametrize(
    ("stop", "says", "code"),
    [
        (["a", "b", "c", "d", "e"], "up to 4 stop sequences", "array_above_max_length"),
        ("", "cannot be empty", "empty_string"),
        (["x" * 1001], "at most 1,000", "string_above_max_length"),
    ],
    ids=["five", "empty", "long"],
)
def test_a_stop_kilde_cannot_apply_is_a_bad_request_naming_it(api, stop, says, code):
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN), stop=stop)
    assert caught.value.param == "stop" and says in caught.value.message
    assert caught.value.code == code  # OpenAI's for the fault; was `bad_request`


def test_a_long_chat_keeps_its_latest_turns(api):
    # Over 500 messages, or one early message over 20,000 characters, refused every later question of the chat.
    early = [*user("Tell me everything. " + "x" * 30_000), {"role": "assistant", "content": "a"}]
    chatter = [m for i in range(300) for m in (*user(f"question {i}"), {"role": "assistant", "content": "a"})]
    reply = client(api.url).chat.completions.create(
        model="kilde", messages=[*early, *chatter, *user(DEMO_QUESTION_EN)]
    )
    assert (
        reply.model_extra["kilde"]["question"] == DEMO_QUESTION_EN
        and "[1]" in reply.choices[0].message.content
    )


PICTURE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


@pytest.mark.parametrize("stream", [False, True])
def test_earlier_turns_may_hold_parts_that_are_not_text(api, stream):
    # OpenAI's own replies hold refusal parts, and a chat may have shown a picture: resent, each was a 400
    # ("Kilde reads text only, not 'refusal' parts") on every later question of the chat.
    messages = [
        {"role": "user", "content": [{"type": "text", "text": DEMO_QUESTION_EN}, PICTURE, AUDIO, FILE]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
        {"role": "user", "content": "And what about nuclear weapons?"},
    ]
    reply = client(api.url).chat.completions.create(model="kilde", messages=messages, stream=stream)
    kilde = (list(reply)[-1] if stream else reply).model_extra["kilde"]
    # The earlier question's text is still the history the follow-up is read with.
    assert kilde["question"] == "And what about nuclear weapons?"
    assert "Article 4" in kilde["standalone_question"]


def test_usage_counts_no_message_kilde_does_not_read(api):
    # Every message's text was tokenised for `prompt_tokens`: a long old message, never read, cost each later
    # question of the chat its count (and a system prompt, ignored, was counted too).
    recent = [
        m
        for i in range(8)
        for m in (*user(f"What about point {i}?"), {"role": "assistant", "content": f"Point {i}."})
    ]
    unread = [
        {"role": "system", "content": "Answer from the archive. " * 2_000},
        *user([{"type": "text", "text": "Tell me everything. " * 10_000}, PICTURE]),
        {"role": "assistant", "content": "Everything. " * 10_000 + "\n\nSources:\n[1] An article"},
    ]
    short, long = (
        client(api.url).chat.completions.create(
            model="kilde", messages=[*earlier, *recent, *user(DEMO_QUESTION_EN)]
        )
        for earlier in ([], unread)
    )
    assert long.usage.prompt_tokens == short.usage.prompt_tokens < 200


def test_history_reads_the_text_of_earlier_turns_and_a_refusal_as_what_was_said():
    from ui.openai_schema import ChatIn, ask_request_of

    body = ChatIn.model_validate(
        {
            "model": "kilde",
            "messages": [
                {"role": "user", "content": [PICTURE, {"type": "text", "text": "Who signed it?"}]},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
                {"role": "user", "content": [PICTURE]},
                {"role": "assistant", "content": [{"type": "text", "text": "A picture."}]},
                # OpenAI's own reply that refused, resent as the client got it: the refusal is what it said
                {"role": "assistant", "content": None, "refusal": "I can't say."},
                {"role": "user", "content": "When?"},
            ],
        }
    )
    request = ask_request_of(body)
    assert [(t.role, t.content) for t in request.history] == [
        ("user", "Who signed it?"),
        ("assistant", "I can't help with that."),
        ("user", ""),
        ("assistant", "A picture."),
        ("assistant", "I can't say."),
    ]
    assert request.question == "When?"


@pytest.mark.parametrize("stream", [False, True])
def test_a_picture_in_the_question_is_still_refused(api, stream):
    messages = [
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, PICTURE]},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(model="kilde", messages=messages, stream=stream)
    assert "text only, not 'image_url' parts" in caught.value.message
    assert caught.value.param == "messages[1].content"


AUDIO = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
FILE = {"type": "file", "file": {"file_id": "file-abc123"}}


# A part OpenAI's API refuses, in a message the history reads (`earlier`) or one older than it reads (`unread`):
# both were left out of the history and answered, where OpenAI refuses the request, whichever message holds them
# (a text part without its text was refused in those the history reads).
UNFIT_PARTS = [
    (
        "a text part without its text",
        {"type": "text"},
        "messages[0].content[1].text",
        "missing_required_parameter",
        "Missing required parameter: 'messages[0].content[1].text'. A 'text' part needs its text: "
        '{"type": "text", "text": "…"}',
    ),
    (
        "an unknown type",
        {"type": "input_text", "text": "Hi"},  # the Responses API's, sent to chat completions
        "messages[0].content[1].type",
        "invalid_value",
        "Invalid value for 'messages[0].content[1].type': 'input_text'. Supported values are: 'text', "
        "'image_url', 'input_audio', 'file', and 'refusal'.",
    ),
    (
        "an image part without its image",
        {"type": "image_url"},
        "messages[0].content[1].image_url",
        "missing_required_parameter",
        "Missing required parameter: 'messages[0].content[1].image_url'. An 'image_url' part needs its "
        'image_url: {"type": "image_url", "image_url": {"url": "…"}}',
    ),
    (
        "an image without its url",
        {"type": "image_url", "image_url": {"detail": "low"}},
        "messages[0].content[1].image_url.url",
        "missing_required_parameter",
        "Missing required parameter: 'messages[0].content[1].image_url.url'.",
    ),
    (
        "an image as a string",
        {"type": "image_url", "image_url": "https://example.org/a.png"},
        "messages[0].content[1].image_url",
        "invalid_type",
        "Invalid type for 'messages[0].content[1].image_url': expected an object, but got a string instead.",
    ),
    (
        "an audio part without its audio",
        {"type": "input_audio"},
        "messages[0].content[1].input_audio",
        "missing_required_parameter",
        "Missing required parameter: 'messages[0].content[1].input_audio'. An 'input_audio' part needs its "
        'input_audio: {"type": "input_audio", "input_audio": {"data": "…", "format": "wav"}}',
    ),
    (
        "a file part without its file",
        {"type": "file"},
        "messages[0].content[1].file",
        "missing_required_parameter",
        "Missing required parameter: 'messages[0].content[1].file'. A 'file' part needs its file: "
        '{"type": "file", "file": {"file_id": "…"}}',
    ),
    # An assistant's part in a user message, and values OpenAI's API does not take: each was left out and answered.
    (
        "a refusal part in a user message",
        {"type": "refusal", "refusal": "No."},
        "messages[0].content[1].type",
        "invalid_value",
        "Invalid value for 'messages[0].content[1].type': 'refusal'. Supported values in a message with role "
        "'user' are: 'text', 'image_url', 'input_audio', and 'file'.",
    ),
    (
        "an audio format OpenAI does not take",
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "ogg"}},
        "messages[0].content[1].input_audio.format",
        "invalid_value",
        "Invalid value for 'messages[0].content[1].input_audio.format': 'ogg'. Supported values are: 'wav' and "
        "'mp3'.",
    ),
    (
        "an image detail OpenAI does not take",
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "ultra"}},
        "messages[0].content[1].image_url.detail",
        "invalid_value",
        "Invalid value for 'messages[0].content[1].image_url.detail': 'ultra'. Supported values are: 'auto', "
        "'low', 'high', and 'original'.",
    ),
]


@pytest.mark.parametrize("where", ["asked", "earlier", "unread"])
@pytest.mark.parametrize(
    ("case", "part", "param", "code", "says"), UNFIT_PARTS, ids=[c[0] for c in UNFIT_PARTS]
)
def test_a_part_openai_refuses_is_refused_in_any_message(api, where, case, part, param, code, says):
    unfit = {"role": "user", "content": [{"type": "text", "text": "Hi"}, part]}
    chatter = [m for i in range(60) for m in ({"role": "assistant", "content": "a"}, *user(f"question {i}"))]
    messages = {
        "asked": [unfit],
        "earlier": [unfit, {"role": "assistant", "content": "a"}, *user(DEMO_QUESTION_EN)],
        "unread": [unfit, *chatter, {"role": "assistant", "content": "a"}, *user(DEMO_QUESTION_EN)],
    }[where]
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(model="kilde", messages=messages)
    assert (caught.value.param, caught.value.code) == (param, code)
    assert caught.value.body["message"] == says
    assert caught.value.type == "invalid_request_error"


REFUSAL = {"type": "refusal", "refusal": "I can't help with that."}
# A part of a type another role holds (openai-python's message params: system, developer and tool messages hold
# text parts, an assistant's text and refusal parts): left out of the history and answered, where OpenAI's API
# refuses the request ("Image URLs are only allowed for messages with role 'user'").
OTHER_ROLES_PARTS = [
    ("system", PICTURE),
    ("developer", AUDIO),
    ("tool", FILE),
    ("system", REFUSAL),
    ("tool", REFUSAL),
    ("assistant", PICTURE),
    ("assistant", AUDIO),
]


@pytest.mark.parametrize(
    ("role", "part"), OTHER_ROLES_PARTS, ids=[f"{role} {part['type']}" for role, part in OTHER_ROLES_PARTS]
)
def test_a_part_its_role_does_not_take_is_refused_naming_its_type(api, role, part):
    supported = {
        "assistant": "'text' and 'refusal'",
        "system": "'text'",
        "developer": "'text'",
        "tool": "'text'",
    }[role]
    unfit = {"role": role, "content": [{"type": "text", "text": "Hi"}, part]}
    if role == "tool":
        unfit["tool_call_id"] = "call_1"
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(
            model="kilde", messages=[*user("Hi"), unfit, *user(DEMO_QUESTION_EN)]
        )
    assert (caught.value.param, caught.value.code) == ("messages[1].content[1].type", "invalid_value")
    assert caught.value.body["message"] == (
        f"Invalid value for 'messages[1].content[1].type': {part['type']!r}. Supported values in a message with "
        f"role {role!r} are: {supported}."
    )


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
# A message without what its role needs, or with a field of another type: answered, where OpenAI's API refuses
# it (openai-python's message params; "Invalid value for 'content': expected a string, got null." is OpenAI's
# answer to a user message, or an assistant's without tool calls, whose content is null).
UNFIT_MESSAGES = [
    (
        "a system message without content",
        {"role": "system"},
        "messages[0].content",
        "missing_required_parameter",
        "Missing required parameter: 'messages[0].content'.",
    ),
    (
        "a user message whose content is null",
        {"role": "user", "content": None},
        "messages[0].content",
        None,
        "Invalid value for 'messages[0].content': expected a string, got null.",
    ),
    (
        "an assistant message with neither content nor a tool call",
        {"role": "assistant", "content": None},
        "messages[0].content",
        None,
        "Invalid value for 'messages[0].content': expected a string, got null.",
    ),
    # OpenAI's words and code (none) for a tool message without its id and a function message without its name
    # (langchain-ai/langchain issue 22600, MadcowD/ell issue 325; open-compass/T-Eval issue 66), its `param`
    # `messages.[3].tool_call_id` in Kilde's path style; they were "Missing required parameter: …", code
    # `missing_required_parameter` (round fifteen).
    (
        "a tool message without its tool_call_id",
        {"role": "tool", "content": "42"},
        "messages[0].tool_call_id",
        None,
        "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
    ),
    (
        "a tool message whose tool_call_id is null",
        {"role": "tool", "tool_call_id": None, "content": "42"},
        "messages[0].tool_call_id",
        None,
        "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
    ),
    (
        "a tool_call_id that is a number",
        {"role": "tool", "tool_call_id": 1, "content": "42"},
        "messages[0].tool_call_id",
        "invalid_type",
        "Invalid type for 'messages[0].tool_call_id': expected a string, but got an integer instead.",
    ),
    (
        "a tool message with no tool call before it",  # as a client that cut its history between the two sends
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        "messages[0].role",
        None,
        "Invalid parameter: messages with role 'tool' must be a response to a preceding message with 'tool_calls'.",
    ),
    (
        "a function message without its name",
        {"role": "function", "content": "42"},
        "messages[0].name",
        None,
        "Missing parameter 'name': messages with role 'function' must have a 'name'.",
    ),
    (
        "a function message of parts",
        {"role": "function", "name": "get_weather", "content": [{"type": "text", "text": "42"}]},
        "messages[0].content",
        "invalid_type",
        "Invalid type for 'messages[0].content': expected a string, but got an array instead.",
    ),
    (
        "a name that is not a string",
        {"role": "user", "content": "Hi", "name": 7},
        "messages[0].name",
        "invalid_type",
        "Invalid type for 'messages[0].name': expected a string, but got an integer instead.",
    ),
]


@pytest.mark.parametrize(
    ("case", "message", "param", "code", "says"), UNFIT_MESSAGES, ids=[c[0] for c in UNFIT_MESSAGES]
)
def test_a_message_without_what_its_role_needs_is_refused_naming_it(api, case, message, param, code, says):
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(model="kilde", messages=[message, *user(DEMO_QUESTION_EN)])
    assert (caught.value.param, caught.value.code) == (param, code)
    assert caught.value.body["message"] == says


def calls(*ids: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [{**CALL, "id": i} for i in ids]}


def answer(call_id: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": "Sunny"}


UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
    "'tool_call_id'. The following tool_call_ids did not have response messages: "
)
# A tool-using chat whose calls and answers do not pair up, as a client sends it that dropped a tool's answer or
# mixed two turns' ids: answered, where OpenAI's API refuses it, in these words, with code null.
UNPAIRED_CALLS = [
    (
        "a call no tool message answers",
        [calls("call_1"), *user("Hi")],
        "messages[2].role",
        UNANSWERED + "call_1",
    ),
    (
        "two calls of which one is answered",
        [calls("call_1", "call_2"), answer("call_2"), *user("Hi")],
        "messages[3].role",
        UNANSWERED + "call_1",
    ),
    (
        "two calls neither answered",
        [calls("call_1", "call_2"), {"role": "assistant", "content": "Done."}],
        "messages[2].role",
        UNANSWERED + "call_1, call_2",
    ),
    (
        "a tool message answering another call",
        [calls("call_1"), answer("call_9")],
        "messages[2].tool_call_id",
        "Invalid parameter: 'tool_call_id' of 'call_9' not found in 'tool_calls' of previous message.",
    ),
    (
        "an earlier turn's call answered again after the next call",
        [calls("call_1"), answer("call_1"), calls("call_2"), answer("call_1")],
        "messages[4].tool_call_id",
        "Invalid parameter: 'tool_call_id' of 'call_1' not found in 'tool_calls' of previous message.",
    ),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(
    ("case", "messages", "param", "says"), UNPAIRED_CALLS, ids=[c[0] for c in UNPAIRED_CALLS]
)
def test_tool_calls_and_their_answers_must_pair_up(api, case, messages, param, says, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url).chat.completions.create(
            model="kilde",
            messages=[*user("What's the weather?"), *messages, *user(DEMO_QUESTION_EN)],
            stream=stream,
        )
    assert (caught.value.param, caught.value.code, caught.value.type) == (
        param,
        None,
        "invalid_request_error",
    )
    assert caught.value.body["message"] == says


def test_tool_calls_each_answered_in_any_order_are_answered(api):
    messages = [
        *user("What's the weather?"),
        calls("call_1", "call_2"),
        answer("call_2"),
        answer("call_1"),
        {"role": "assistant", "content": "Sunny twice."},
        calls("call_3"),
        answer("call_3"),
        *user(DEMO_QUESTION_EN),
    ]
    reply = client(api.url).chat.completions.create(model="kilde", messages=messages)
    assert reply.model_extra["kilde"]["answerable"]


@pytest.mark.parametrize("stream", [False, True])
def test_the_roles_and_fields_of_a_tool_using_chat_are_answered(api, stream):
    # What a chat that once called tools resends, as OpenAI takes it: held, the tool turns are not read.
    messages = [
        {
            "role": "developer",
            "content": [{"type": "text", "text": "Answer from the archive."}],
            "name": "app",
        },
        {"role": "user", "content": "What's the weather?", "name": "alice"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "Sunny"}]},
        {"role": "function", "name": "get_weather", "content": None},
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"role": "user", "content": DEMO_QUESTION_EN, "name": "alice"},
    ]
    reply = client(api.url).chat.completions.create(model="kilde", messages=messages, stream=stream)
    kilde = (list(reply)[-1] if stream else reply).model_extra["kilde"]
    assert kilde["question"] == DEMO_QUESTION_EN and kilde["answerable"]


def test_a_reply_resent_as_the_client_got_it_is_the_history(api):
    # The reply's message appended to the chat as the client got it: the object (the client sends the fields it
    # holds), or its `model_dump()`, with `refusal`, `audio`, `function_call` and `tool_calls` null. Held.
    first = client(api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
    message = first.choices[0].message
    assert message.model_dump()["refusal"] is None and "tool_calls" in message.model_dump()
    for resent in (message, message.model_dump()):
        follow = client(api.url).chat.completions.create(
            model="kilde",
            messages=[*user(DEMO_QUESTION_EN), resent, *user("And what about nuclear weapons?")],
        )
        assert "Article 4" in follow.model_extra["kilde"]["standalone_question"]


def test_unknown_model_and_route_are_not_found_errors(api):
    for stream in (False, True):
        with pytest.raises(openai.NotFoundError) as caught:
            client(api.url).chat.completions.create(
                model="gpt-4o", messages=user(DEMO_QUESTION_EN), stream=stream
            )
        assert "'kilde'" in caught.value.message
        assert (caught.value.code, caught.value.param) == ("model_not_found", "model")  # was `not_found`
    # A route Kilde does not serve: OpenAI's answer, code null and "Invalid URL (…)"; it was Kilde's `not_found`.
    with pytest.raises(openai.NotFoundError) as caught:
        client(api.url).embeddings.create(model="kilde", input="x")
    assert caught.value.code is None and caught.value.type == "invalid_request_error"
    assert caught.value.body["message"].startswith("Invalid URL (POST /v1/embeddings); Kilde serves /v1/chat")
    assert httpx.get(api.url + "/api/nope").json()["error"] == "not_found"  # Kilde's own API keeps its codes
    not_json = httpx.post(
        api.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (
        not_json.status_code == 400
        and not_json.json()["error"]["message"] == "The request body is not valid JSON."
    )


def test_a_base_url_without_v1_is_told_to_add_it(api):
    """`OpenAI(base_url="http://host:port")`, the commonest slip, was a bare `{'detail': 'Not Found'}` 404."""
    from langchain_openai import ChatOpenAI

    rootless = openai.OpenAI(base_url=api.url, api_key="unused", max_retries=0, timeout=120)
    calls = [
        lambda: rootless.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN)),
        lambda: rootless.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN), stream=True),
        lambda: rootless.models.list(),
        lambda: rootless.models.retrieve("kilde"),
        lambda: rootless.responses.create(model="kilde", input=DEMO_QUESTION_EN),
        lambda: ChatOpenAI(base_url=api.url, api_key="unused", model="kilde", max_retries=0).invoke("Hei"),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.type == "invalid_request_error" and caught.value.code is None
        assert f"base URL {api.url}/v1" in caught.value.message, caught.value.message
    # The base URL itself, as a client probing it asks it.
    bare = httpx.get(api.url + "/v1")
    assert bare.status_code == 404 and "Kilde serves /v1/chat/completions" in bare.json()["error"]["message"]


def test_a_route_asked_with_another_method_is_a_405_naming_the_method_to_use(api):
    """It was a 404 saying "No route /v1/models/kilde; Kilde serves /v1/chat/completions and /v1/models"."""
    with pytest.raises(openai.APIStatusError) as caught:
        client(api.url).models.delete("kilde")  # DELETE /v1/models/kilde, as for a fine-tuned model
    assert caught.value.status_code == 405 and caught.value.code == "method_not_allowed"
    assert caught.value.message.endswith("Use GET /v1/models/kilde, not DELETE.")
    for method, path, allowed in (
        ("GET", "/v1/chat/completions", "POST"),  # a browser opening the URL
        ("PUT", "/v1/chat/completions", "POST"),
        ("OPTIONS", "/v1/chat/completions", "POST"),  # no Origin: not a CORS preflight
        ("DELETE", "/v1/models", "GET"),
        ("HEAD", "/v1/models", "GET"),
    ):
        response = httpx.request(method, api.url + path)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (method, path)
        if method != "HEAD":
            error = response.json()["error"]
            assert (
                error["message"] == f"Use {allowed} {path}, not {method}."
                and error["type"] == "invalid_request_error"
            )
    assert httpx.delete(api.url + "/v1/files/x").status_code == 404  # no such route, whatever the method
    # A method beyond the common ones too: it was Gradio's 404, its {"detail": "Not Found"} as the message
    for method in ("TRACE", "PROPFIND"):
        response = httpx.request(method, api.url + "/v1/models")
        assert response.status_code == 405 and response.headers["allow"] == "GET", method
        assert response.json()["error"]["message"] == f"Use GET /v1/models, not {method}."
        missing = httpx.request(method, api.url + "/v1/files/x")
        assert missing.status_code == 404 and missing.json()["error"]["code"] is None, method


def test_refusals_at_the_edge_have_openais_shape_too(api):
    # The outermost middleware refuses a body over 1 MiB and an unknown host name before any route runs;
    # the client showed only "Error code: 413" for Kilde's own error shape.
    huge = [{"role": "user", "content": "x" * (2 << 20)}]
    with pytest.raises(openai.APIStatusError) as caught:
        client(api.url).chat.completions.create(model="kilde", messages=huge)
    assert caught.value.status_code == 413 and caught.value.code == "too_large"
    assert "larger than 1,048,576 bytes" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client(api.url, default_headers={"Host": "evil.example"}).models.list()
    assert caught.value.code == "host_not_allowed" and "KILDE_TRUSTED_HOSTS" in caught.value.message


# -- the rules of /api/ask hold here too ------------------------------------------------------------------


def test_rate_limit_is_shared_with_api_ask(built_index, assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(built_index.replace(rate_limit_per_minute=2), assistant)).start()
    try:
        assert (
            httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120).status_code
            == 200
        )
        client(server.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
        for stream in (False, True):
            with pytest.raises(openai.RateLimitError) as caught:
                client(server.url).chat.completions.create(
                    model="kilde", messages=user(DEMO_QUESTION_EN), stream=stream
                )
            assert "limit is 2 per minute" in caught.value.message
            assert int(caught.value.response.headers["retry-after"]) >= 1
            # OpenAI's code and type for a limit on requests per minute; they were `rate_limited`, `rate_limit_error`
            assert (caught.value.code, caught.value.type) == ("rate_limit_exceeded", "requests")
        refused = httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"  # /api keeps Kilde's
    finally:
        server.stop()


def test_a_busy_server_is_a_503_the_client_waits_out_as_told_and_retries(built_index, assistant, monkeypatch):
    # With every answering slot taken, the face waited for one without end (the `openai` client's own timeout,
    # 10 minutes by default), where /api/ask answers 503 `busy` with Retry-After once the request budget passed.
    # Now the same 503, in OpenAI's shape for an overloaded server, which the client retries after Retry-After.
    from ui.server import create_app

    release = threading.Event()
    held = Held(assistant, release)
    settings = built_index.replace(rate_limit_per_minute=0, ui_concurrency=1, request_budget_s=1)
    server = ThreadServer(create_app(settings, held)).start()
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                httpx.post, server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=180
            )
            try:
                assert held.entered.wait(60)  # the one slot is taken
                for stream in (False, True):
                    with pytest.raises(openai.InternalServerError) as caught:
                        client(server.url).chat.completions.create(
                            model="kilde", messages=user(DEMO_QUESTION_EN), stream=stream
                        )
                    refused = caught.value.response
                    assert refused.status_code == 503 and refused.headers["retry-after"] == "5", stream
                    assert "x-should-retry" not in refused.headers  # busy is worth retrying
                    assert refused.json() == {
                        "error": {
                            "message": "Kilde is busy: the question got no turn within 1 s; try again shortly.",
                            "type": "service_unavailable_error",  # OpenAI's, for a model without capacity
                            "param": None,
                            "code": "server_is_overloaded",
                        }
                    }
                # The client retries a 503, waiting what Retry-After says (not its own backoff of 0.5 s to 8 s);
                # its wait is where the test lets the held question finish, so the retry gets the turn.
                caller, waits, real_sleep = threading.current_thread(), [], time.sleep

                def sleep(seconds: float) -> None:
                    if threading.current_thread() is not caller:
                        return real_sleep(seconds)
                    waits.append(seconds)
                    release.set()
                    assert first.result().status_code == 200

                monkeypatch.setattr(time, "sleep", sleep)
                retrying = openai.OpenAI(
                    base_url=server.url + "/v1", api_key="unused", max_retries=2, timeout=120
                )
                reply = retrying.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
                monkeypatch.undo()
                assert waits == [5.0] and "[1]" in reply.choices[0].message.content
            finally:
                release.set()
    finally:
        server.stop()


class CountedStreams:
    """The real assistant, whose answers are counted while they are computed (`running`, `most` at once); the
    first one stops after its first piece until the test releases it: only `stream` differs."""

    def __init__(self, real, release: threading.Event):
        self.real = real
        self.release = release
        self.lock = threading.Lock()
        self.running = self.most = self.started = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def stream(self, request):
        with self.lock:
            self.started += 1
            first = self.started == 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            events = iter(self.real.stream(request))
            yield next(events)
            if first:
                self.release.wait(120)
            yield from events
        finally:
            with self.lock:
                self.running -= 1


def test_a_stream_its_client_left_keeps_its_turn_until_its_answer_ends(built_index, assistant, monkeypatch):
    # A client that went away mid-stream cancelled the task holding its turn: the turn was given back at once,
    # while the worker thread went on computing the answer (anyio's wait for a thread is not shielded from
    # asyncio's cancelling), so another answer was computed beside it, past `KILDE_UI_CONCURRENCY`.
    from ui import openai_api
    from ui.server import create_app

    closed, close = threading.Event(), openai_api.AnswerStream.close

    def closing(stream):  # the server has seen the client go
        close(stream)
        closed.set()

    monkeypatch.setattr(openai_api.AnswerStream, "close", closing)
    release = threading.Event()
    counted = CountedStreams(assistant, release)
    settings = built_index.replace(rate_limit_per_minute=0, ui_concurrency=1, request_budget_s=1)
    server = ThreadServer(create_app(settings, counted)).start()
    try:
        left = client(server.url).chat.completions.create(
            model="kilde", messages=user(DEMO_QUESTION_EN), stream=True
        )
        pieces = iter(left)
        next(pieces), next(pieces)  # the role, then the first piece: the answer is being computed
        left.close()  # the client goes away
        assert closed.wait(60) and counted.running == 1
        # The one slot is still the left stream's, whose answer is still being computed: the next question gets
        # no turn within the budget, rather than an answer computed beside it.
        with pytest.raises(openai.InternalServerError) as caught:
            client(server.url).chat.completions.create(
                model="kilde", messages=user(DEMO_QUESTION_EN), stream=True
            )
        assert caught.value.status_code == 503 and counted.most == 1
        release.set()  # the left answer ends at its next piece, and gives its turn back
        reply = openai.OpenAI(
            base_url=server.url + "/v1", api_key="unused", max_retries=5, timeout=120
        ).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
        assert "[1]" in reply.choices[0].message.content
        assert counted.most == 1 and counted.started == 2
    finally:
        release.set()
        server.stop()


def test_foreign_origins_are_refused(api):
    evil = client(api.url, default_headers={"Origin": "https://evil.example"})
    with pytest.raises(openai.PermissionDeniedError) as caught:
        evil.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
    assert caught.value.code == "origin_not_allowed" and "KILDE_ALLOWED_ORIGINS" in caught.value.message
    # The Gate's security headers survive the rewrite into OpenAI's error shape, as on every other response.
    for response in (
        caught.value.response,
        httpx.get(api.url + "/v1/models"),
        httpx.get(api.url + "/v1/nope"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    with pytest.raises(openai.PermissionDeniedError):
        evil.models.list()
    preflight = httpx.options(
        api.url + "/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_auth_modes_hold(built_index, assistant):
    from ui.server import create_app

    proxied = ThreadServer(
        create_app(built_index.replace(auth_mode="proxy", trusted_proxies=("10.0.0.5",)), assistant)
    ).start()
    try:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            client(proxied.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
        assert caught.value.code == "untrusted_client"
    finally:
        proxied.stop()
    sessions = ThreadServer(create_app(built_index.replace(auth_mode="session"), assistant)).start()
    try:
        with pytest.raises(openai.AuthenticationError) as caught:
            client(sessions.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
        assert caught.value.code == "no_session"
        # A client that keeps cookies gets its session from any GET first, as the widget does.
        with httpx.Client(timeout=120) as http:
            signed_in = client(sessions.url, http_client=http)
            signed_in.models.list()
            reply = signed_in.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
            assert "[1]" in reply.choices[0].message.content
    finally:
        sessions.stop()


# -- with a language model: the first sentence goes out while the model still writes ----------------------

ARTICLE4_EN = (
    "Article 4 says that if one party faces an armed invasion and is in a state of war, the other "
    "will immediately use all available means to provide military and other assistance."
)


SECRET = "sk-test-kilde-0123456789abcdefSECRET"


@pytest.fixture(scope="module")
def scripted():
    from assistant.testing.scripted_llm import ScriptedLLMServer

    with ScriptedLLMServer() as running:
        yield running


@pytest.fixture(scope="module")
def generative_api(built_index, embedder, scripted):
    from assistant.build import build_assistant
    from ui.server import create_app

    settings = scripted.settings_for(
        built_index,
        llm_timeout_s=60,
        llm_max_retries=0,
        llm_api_key=SECRET,
        rate_limit_per_minute=1000,
    )
    server = ThreadServer(create_app(settings, build_assistant(settings, embedder=embedder))).start()
    yield server
    server.stop()


def test_generative_answer_streams_its_first_sentence_before_the_model_finishes(generative_api, scripted):
    from assistant.testing.scripted_llm import Reply

    # The model sends its first sentence, then stalls for 40 s. The client reads with a 20 s timeout: a server
    # that held the text back until the answer was whole would time it out.
    scripted.reset()
    wake = threading.Event()
    scripted.script(
        Reply(
            chunks=[f"{ARTICLE4_EN} [1]", " It was signed in Pyongyang [1]."],
            stall_after=1,
            stall_s=40,
            wake=wake,
        )
    )
    fast = openai.OpenAI(base_url=generative_api.url + "/v1", api_key="unused", max_retries=0, timeout=20)
    stream = fast.chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN), stream=True)
    first_text = next(c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content)
    stream.close()
    wake.set()  # the answer the client left holds its turn until it ends (round twelve): let the model finish
    assert first_text.startswith("Article 4 says") and "Pyongyang" not in first_text
    assert len(scripted.chat_requests) == 1  # the answer came from the scripted model


def test_generative_answer_plain_and_streamed_agree(generative_api, scripted):
    from assistant.testing.scripted_llm import Reply

    scripted.reset()
    scripted.script(Reply(f"{ARTICLE4_EN} [1]"), Reply(f"{ARTICLE4_EN} [1]"))
    plain = client(generative_api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
    chunks = list(
        client(generative_api.url).chat.completions.create(
            model="kilde", messages=user(DEMO_QUESTION_EN), stream=True
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == plain.choices[0].message.content
    assert plain.choices[0].message.content.startswith(f"{ARTICLE4_EN} [1]\n\nSources:\n[1] ")
    kilde = plain.model_extra["kilde"]
    assert kilde["backend"] == "openai-compatible" and kilde["citations"][0]["article_id"] == SEED_ID
    assert kilde["sentences"][0]["supported"] is True


class BreaksAfterFirstPiece:
    """The real assistant, whose answer stream fails after its first piece (as when the index is removed under
    a running server): only `stream` differs."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def stream(self, request):
        from assistant.core.errors import IndexMissingError

        yield next(iter(self.real.stream(request)))
        raise IndexMissingError("/gone")


def test_an_error_after_the_stream_began_is_raised_by_the_client(built_index, assistant):
    from ui.server import create_app

    server = ThreadServer(create_app(built_index, BreaksAfterFirstPiece(assistant))).start()
    try:
        stream = client(server.url).chat.completions.create(
            model="kilde", messages=user(DEMO_QUESTION_EN), stream=True
        )
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
        assert "".join(received).strip()  # the first piece arrived before the error
        assert "No Kilde index found at /gone" in caught.value.message
        assert caught.value.body["code"] == "not_ready"
        # Without streaming, the same failure is a plain HTTP error with its status.
        with pytest.raises(openai.InternalServerError) as early:
            client(server.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
        assert early.value.status_code == 503 and "No Kilde index" in early.value.message
    finally:
        server.stop()


class FaultyAnswers:
    """The real assistant, whose answering meets a fault that is no Kilde error (a bug: what no handler of
    Kilde's turns into a clean one), with a server path in its message: only `stream` and `ask` differ."""

    FAULT = "/srv/kilde/assistant/answering/secret.py"

    def __init__(self, real):
        self.real = real
        self.answered = 0  # the questions that reached answering: one per request the server received

    def __getattr__(self, name):
        return getattr(self.real, name)

    def stream(self, request):
        self.answered += 1
        raise KeyError(self.FAULT)
        yield  # a generator, as the real one is: the fault comes with its first event

    def ask(self, request):
        self.answered += 1
        raise KeyError(self.FAULT)


def logged_faults(caplog, within_s: float = 10.0) -> list[logging.LogRecord]:
    """The server's records of a failure with its traceback, waited for until one is there or time runs out."""
    deadline = time.monotonic() + within_s
    while True:
        logged = [r for r in caplog.records if r.name == "kilde.ui" and r.exc_info]
        if logged or time.monotonic() > deadline:
            return logged
        time.sleep(0.05)


def test_a_bug_under_v1_is_a_500_in_openais_shape_that_tells_nothing_of_it(built_index, assistant, caplog):
    """It came from Starlette's outermost error handler, outside the rewriter into OpenAI's shape: Kilde's
    `{"error": "internal_error", "message"}`, which the `openai` client shows as a raw body with no `code`."""
    from ui.server import create_app

    server = ThreadServer(create_app(built_index, FaultyAnswers(assistant))).start()
    try:
        for stream in (False, True):
            caplog.clear()
            with pytest.raises(openai.InternalServerError) as caught:
                client(server.url).chat.completions.create(
                    model="kilde", messages=user(DEMO_QUESTION_EN), stream=stream
                )
            assert caught.value.status_code == 500 and caught.value.code == "internal_error", stream
            assert caught.value.response.json() == {
                "error": {
                    "message": "Internal error; the server log has the details.",
                    "type": "api_error",
                    "param": None,
                    "code": "internal_error",
                }
            }
            text = caught.value.response.text
            assert FaultyAnswers.FAULT not in text and "Traceback" not in text and "KeyError" not in text
            # and with the headers every other answer carries (it was built outside the gate that adds them)
            assert caught.value.response.headers.get("x-content-type-options") == "nosniff", stream
            # The details still go to the server log, as for any other route: Starlette's outermost handler
            # logs once the rewriter has answered, so the record may land just after the client has its 500.
            logged = logged_faults(caplog)
            assert logged and FaultyAnswers.FAULT in str(logged[0].exc_info[1]), stream
        # Outside /v1/, the same fault keeps Kilde's own shape.
        asked = httpx.post(server.url + "/api/ask", json={"question": DEMO_QUESTION_EN}, timeout=120)
        assert asked.status_code == 500 and asked.json() == {
            "error": "internal_error",
            "message": "Internal error; the server log has the details.",
        }
        assert asked.headers.get("x-content-type-options") == "nosniff"
    finally:
        server.stop()


def test_a_bug_under_v1_is_not_retried_by_the_openai_client(built_index, assistant):
    # The client retries any 5xx, twice by default: a bug's 500, which the same request meets again, was asked
    # three times. It honours `x-should-retry: false`, and raises at once.
    from assistant.core.errors import ConfigError
    from ui.server import create_app

    class Misconfigured(FaultyAnswers):
        def stream(self, request):
            self.answered += 1
            raise ConfigError("no such generative backend")
            yield

    for faulty in (FaultyAnswers(assistant), Misconfigured(assistant)):  # unhandled, and Kilde's own 500
        server = ThreadServer(create_app(built_index.replace(rate_limit_per_minute=1000), faulty)).start()
        try:
            retrying = openai.OpenAI(
                base_url=server.url + "/v1", api_key="unused", max_retries=2, timeout=120
            )
            for stream in (False, True):
                faulty.answered = 0
                with pytest.raises(openai.InternalServerError) as caught:
                    retrying.chat.completions.create(
                        model="kilde", messages=user(DEMO_QUESTION_EN), stream=stream
                    )
                assert caught.value.status_code == 500, (faulty, stream)
                assert faulty.answered == 1, (faulty, stream)
                assert caught.value.response.headers["x-should-retry"] == "false"
        finally:
            server.stop()


def test_a_failing_model_falls_back_and_the_key_never_reaches_the_client(generative_api, scripted):
    from assistant.testing.scripted_llm import Reply

    scripted.reset()
    refusal = Reply.refused(401, f"Incorrect API key provided: {SECRET}")
    scripted.script(refusal, refusal)
    plain = client(generative_api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
    with httpx.stream(
        "POST",
        generative_api.url + "/v1/chat/completions",
        timeout=120,
        json={"model": "kilde", "messages": user(DEMO_QUESTION_EN), "stream": True},
    ) as raw:
        streamed = raw.read().decode()
    kilde = plain.model_extra["kilde"]
    assert kilde["backend"] == "extractive" and kilde["notice"] and "HTTP 401" in kilde["notice"]
    assert kilde["notice"] in plain.choices[0].message.content  # the reader sees why there is no model answer
    for text in (plain.model_dump_json(), streamed):
        assert SECRET not in text and "0123456789abcdef" not in text


def _wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_cut_reply_stops_reading_the_model_at_the_end_of_the_sentence_it_cuts(
    generative_api, scripted, built_index, stream
):
    # A reply cut at max_tokens (or a stop sequence) still read the model to its own limit (llm_max_tokens):
    # the client waited for text it would not be sent, and the model server wrote it all.
    from assistant.testing.scripted_llm import Reply

    o200k = get_encoding("o200k_base", built_index.tiktoken_cache_dir)
    first_cited = f"{ARTICLE4_EN} [1]"
    more = [" It was signed in Pyongyang [1]."] * 300  # 6 s more of the model's writing, if it is read
    for limits, content in [
        ({"max_tokens": len(o200k.encode(first_cited))}, first_cited),  # cut at the first sentence's end
        ({"max_tokens": 3}, o200k.decode(o200k.encode(ARTICLE4_EN)[:3])),  # and inside it
        ({"stop": " It was"}, first_cited),
    ]:
        scripted.reset()
        scripted.script(Reply(chunks=[*Reply(first_cited).pieces(), *more], chunk_delay_s=0.02))
        got, finish, kilde, usage = cut_reply(generative_api, stream, DEMO_QUESTION_EN, **limits)
        assert (got, finish) == (content, "stop" if "stop" in limits else "length"), limits
        assert kilde["backend"] == "openai-compatible" and kilde["partial"] is True  # no fallback
        assert usage.completion_tokens == len(o200k.encode(content))
        if content == first_cited:  # the sentence shown whole keeps its verdict and its source
            assert [c["article_id"] for c in kilde["citations"]] == [SEED_ID]
            assert [(s["text"], s["supported"]) for s in kilde["sentences"]] == [(ARTICLE4_EN, True)]
        else:
            assert kilde["citations"] == [] and kilde["sentences"] == []
        # Read up to the next sentence's start, then the connection was closed: the model stopped writing.
        assert _wait_for(lambda: scripted.outcomes == ["aborted"]), (limits, scripted.outcomes)


def test_a_long_hostile_conversation_is_read_alike_on_both_faces(api):
    """One conversation, to /v1/chat/completions and to /api/ask: 60 turns, an early one of 30,000 characters, a
    question with markup, control characters and emoji. /api/ask refused it (422: more than 40 turns, a turn over
    20,000 characters) where the OpenAI face answered it, and both searched the markup with the follow-up and
    returned it in `standalone_question`."""
    first = client(api.url).chat.completions.create(model="kilde", messages=user(DEMO_QUESTION_EN))
    turns = [
        *user("Tell me everything. " + "x" * 30_000),
        {"role": "assistant", "content": "a"},
        *[m for i in range(28) for m in (*user(f"question {i}"), {"role": "assistant", "content": "a"})],
        *user(f"<script>alert(1)</script> {DEMO_QUESTION_EN}\x00\x1b 🔥"),
        {"role": "assistant", "content": first.choices[0].message.content},
    ]
    reply = client(api.url).chat.completions.create(model="kilde", messages=[*turns, *user("Who signed it?")])
    searched = f"Who signed it? {DEMO_QUESTION_EN}"
    assert reply.model_extra["kilde"]["standalone_question"] == searched
    for history in (turns, [*turns, *user("Who signed it?")]):  # the question added to the history too
        asked = httpx.post(
            api.url + "/api/ask", json={"question": "Who signed it?", "history": history}, timeout=120
        )
        assert asked.status_code == 200, asked.text
        assert asked.json()["standalone_question"] == searched
        assert asked.json()["answer"] == reply.model_extra["kilde"]["answer"]
