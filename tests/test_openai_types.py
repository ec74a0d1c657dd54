"""The JSON types of `/v1/chat/completions`' parameters, held as OpenAI's API holds them: a value of the wrong
type is a 400 `invalid_request_error` naming the parameter by its path in the body (`messages[0].content`), and
nothing is answered. Malformed bodies go through raw httpx (the `openai` client types its arguments); what a
client sends goes through the `openai` client. Against the real app served by uvicorn over the small index."""

from __future__ import annotations

import httpx
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


def refused(url: str, body: dict) -> dict:
    """The error of a request that must be refused before anything is answered."""
    response = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)
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


def test_a_union_of_types_is_named_whole_and_the_value_sent_is_named(api):
    error = refused(api.url, {"model": "kilde", "messages": [{"role": "user", "content": 5}]})
    assert error["message"] == (
        "Invalid type for 'messages[0].content': expected one of a string or an array, "
        "but got an integer instead."
    )
    error = refused(api.url, {"model": "kilde", "messages": [{"role": 5, "content": "x"}]})
    assert error["param"] == "messages[0].role" and "got an integer" in error["message"]


def test_other_faults_name_their_path_too_and_one_error_is_told(api):
    missing = refused(api.url, {"model": "kilde", "messages": [{"content": "x"}]})
    assert missing["param"] == "messages[0].role" and missing["code"] == "invalid_request"
    assert missing["message"] == "Invalid request: messages[0].role: Field required"
    # Two faults: the first parameter's is told
    first = refused(api.url, {"messages": [{"content": "x"}]})
    assert first["param"] == "model" and first["message"] == "Invalid request: model: Field required"
    wrong = refused(api.url, {"model": "kilde", "messages": [{"role": "wizard", "content": "x"}]})
    assert wrong["param"] == "messages[0].role" and "'user'" in wrong["message"]
    not_json = httpx.post(
        api.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["param"] is None
