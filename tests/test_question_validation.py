"""What a question must be before anything is searched: not empty, not over the limit, and holding at least
one word (a letter or digit in any script); punctuation or emoji alone would be answered with any passage."""

from __future__ import annotations

import pytest

from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest
from assistant.core.errors import BadInputError
from assistant.testing.corpus import DEMO_QUESTION_EN


def validate(question: str) -> AskRequest:
    return Assistant.validate(object.__new__(Assistant), AskRequest(question))


@pytest.mark.parametrize("question", ["???", " ?! ", "…", "🤔", "-- ** --", "«»"])
def test_a_question_without_words_is_refused_with_a_clear_error(question):
    with pytest.raises(BadInputError, match="no words"):
        validate(question)


@pytest.mark.parametrize("question", ["2019?", "Hvem?", "Что это?", "什么？", "  Article 4  "])
def test_a_question_with_a_word_in_any_script_is_accepted_and_trimmed(question):
    assert validate(question).question == question.strip()


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        (
            "\u200bWho signed the pact?",
            ["Who", "signed", "the", "pact?"],
        ),  # a zero-width space pasted in front
        ("Who signed\x00 the pact?\ufeff", ["Who", "signed", "the", "pact?"]),
        ("Hvem\u2060signerte avtalen?", ["Hvemsignerte", "avtalen?"]),  # a word joiner joins
    ],
)
def test_invisible_and_control_characters_are_taken_out_of_the_question(typed, words):
    assert validate(typed).question.split() == words


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("WHO SIGNED THE PACT?", "Who signed the pact?"),
        ("HVEM SIGNERTE AVTALEN?", "Hvem signerte avtalen?"),
        ("HVA ER NATO?", "Hva er nato?"),
        ("NATO", "NATO"),  # one word in capitals is an acronym
        ("Hva er NATO?", "Hva er NATO?"),
        ("Who signed the PACT?", "Who signed the PACT?"),
        ("OL 2019?", "OL 2019?"),
        ("NRK TV", "NRK TV"),
    ],
)
def test_a_question_typed_in_capitals_is_searched_in_ordinary_case(typed, searched):
    assert validate(typed).question == searched


def test_a_shouted_or_pasted_question_gets_the_answer_the_plain_one_gets(assistant):
    plain = assistant.ask(AskRequest(DEMO_QUESTION_EN))
    assert plain.answerable
    for typed in (
        DEMO_QUESTION_EN.upper(),
        "\u200b" + DEMO_QUESTION_EN.replace(" ", " \x00", 1),
        "\U0001f91d " + DEMO_QUESTION_EN,  # an emoji first: "What" was read as a name no passage holds
    ):
        answer = assistant.ask(AskRequest(typed))
        assert answer.answerable, typed
        assert [(c.chunk_id, c.start, c.end) for c in answer.citations] == [
            (c.chunk_id, c.start, c.end) for c in plain.citations
        ]


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("<script>alert(1)</script> Who signed the pact?", "Who signed the pact?"),
        ("What does <b>Article 4</b> say?", "What does Article 4 say?"),
        ("Is 3<5 in Article 4?", "Is 3<5 in Article 4?"),  # no tag
    ],
)
def test_markup_in_a_question_is_not_searched(typed, searched):
    assert validate(typed).question == searched


@pytest.mark.parametrize("typed", ["<img src=x onerror=alert(1)><script>alert(2)</script>", "<b></b>"])
def test_a_question_of_markup_alone_is_refused_with_a_clear_error(typed):
    with pytest.raises(BadInputError, match="only markup"):
        validate(typed)


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("\U0001f91d Who signed the pact?", "Who signed the pact?"),
        ("\U0001f1f3\U0001f1f4 Hvem signerte avtalen? \U0001f44d\U0001f3fd", "Hvem signerte avtalen?"),
        ("Hvor varmt var det, 20 °C?", "Hvor varmt var det, 20 °C?"),
    ],
)
def test_emoji_are_not_searched(typed, searched):
    assert validate(typed).question == searched


@pytest.mark.parametrize("question", ["", "???"])
def test_ask_json_prints_the_apis_error_object_on_stdout(built_index, monkeypatch, capsys, question):
    import json

    from assistant.cli import main

    monkeypatch.setenv("KILDE_DATA_DIR", str(built_index.data_dir))
    monkeypatch.setenv("KILDE_CACHE_DIR", str(built_index.cache_dir))
    assert main(["ask", question, "--json"]) == 1
    out, err = capsys.readouterr()
    body = json.loads(out)
    assert body["error"] == "bad_request" and body["message"].startswith("question: the question")
    assert err == f"kilde: {body['message']}\n"


def test_each_errors_json_code_is_the_one_the_http_api_gives():
    from assistant.core.errors import BackendError, ConfigError, IndexMissingError, StoreBusyError
    from ui.api import status_of

    for exc in (
        BadInputError("q", "r"),
        IndexMissingError("x"),
        StoreBusyError("x"),
        BackendError("x"),
        ConfigError("x"),
    ):
        assert status_of(exc)[1] == exc.code


def test_a_history_turn_that_says_nothing_is_no_turn():
    """An OpenAI client sends `content: null` for a turn that held a picture or a tool call; read as the last
    question, an empty turn left "Who signed it?" without the question it refers back to."""
    from assistant.answering.condense import condense_extractive
    from assistant.core.types import Turn

    history = (
        Turn("user", DEMO_QUESTION_EN),
        Turn("assistant", "Artikkel 4 i avtalen sier … [1]"),
        Turn("user", " \u200b"),
        Turn("assistant", ""),
    )
    request = Assistant.validate(object.__new__(Assistant), AskRequest("Who signed it?", history))
    assert [t.content for t in request.history] == [DEMO_QUESTION_EN, "Artikkel 4 i avtalen sier … [1]"]
    assert condense_extractive(request.question, request.history) == f"Who signed it? {DEMO_QUESTION_EN}"


def test_a_user_turn_is_read_as_its_question_was_and_an_answer_as_it_was_given():
    """A client's history held markup, control characters and emoji that its questions could not: they reached the
    search and came back in `standalone_question` ("Who signed it? <script>alert(1)</script> What\u0000 …"). An
    answer sent back in the HTML a client showed it in was found in no passage."""
    from assistant.answering.condense import condense_extractive
    from assistant.core.types import Turn

    answer = "Artikkel 4 i avtalen sier: «Hvis en av partene … 🔥» [1]\n\nSources:"
    history = (
        Turn("user", "<script>alert(1)</script> WHAT\x00 DOES ARTICLE 4 COMMIT\x1b EACH SIDE TO? 🔥\u200b"),
        Turn("assistant", f"<p>{answer}</p>"),  # sent back as a web client showed it
    )
    request = Assistant.validate(object.__new__(Assistant), AskRequest("Who signed it?", history))
    asked = validate(history[0].content).question  # what the question was searched as when asked
    # an answer is matched to its passages as it was given
    assert [t.content for t in request.history] == [asked, answer]
    assert condense_extractive(request.question, request.history) == (
        "Who signed it? What does article 4 commit each side to?"
    )


def test_a_history_that_ends_with_the_question_itself_is_read_without_it():
    """A client that added the question to its history before sending: "Who signed it?" was searched as "Who
    signed it? Who signed it?", without the question it refers back to."""
    from assistant.core.types import Turn

    history = (Turn("user", DEMO_QUESTION_EN), Turn("assistant", "Artikkel 4 i avtalen sier … [1]"))
    for last in ("Who signed it?", " who signed it? \u200b"):
        request = Assistant.validate(
            object.__new__(Assistant), AskRequest("Who signed it?", (*history, Turn("user", last)))
        )
        assert request.history == history
    # another question left unanswered is the one before this
    request = Assistant.validate(
        object.__new__(Assistant), AskRequest("Who signed it?", (*history, Turn("user", "Og Kina?")))
    )
    assert request.history[-1] == Turn("user", "Og Kina?")


def test_a_conversation_of_any_length_is_taken_and_only_the_turns_read_are_judged():
    """Only the last turns are read: an older turn that is too long, or not text, is dropped with the turns before
    it, not refused on every later question of the chat."""
    from assistant.answering.assistant import MAX_HISTORY_TURNS, MAX_TURN_CHARS
    from assistant.core.types import Turn

    old = (Turn("user", "x" * 1_000_000), Turn("user", "Hvem \ud800 signerte?"))
    chatter = tuple(Turn(role, f"{role} {n}") for n in range(5000) for role in ("user", "assistant"))
    request = Assistant.validate(object.__new__(Assistant), AskRequest("Who signed it?", old + chatter))
    assert request.history == chatter[-MAX_HISTORY_TURNS:]
    long = Assistant.validate(
        object.__new__(Assistant), AskRequest("Why?", (Turn("assistant", "y" * 10**6),))
    )
    assert long.history == (Turn("assistant", "y" * MAX_TURN_CHARS),)


SURROGATE_ERROR = (
    "contains a lone surrogate (half of a UTF-16 pair), which is not text; send the text as valid UTF-8"
)


def test_a_lone_surrogate_is_refused_in_the_field_that_holds_it():
    """The question is judged by `checked_question` alone (as /api/search's query is), and first: with a lone
    surrogate in the history too, the error still names the question."""
    from assistant.core.types import Filters, Turn

    def refusal(request: AskRequest) -> str:
        with pytest.raises(BadInputError) as raised:
            Assistant.validate(object.__new__(Assistant), request)
        return str(raised.value)

    broken_turn = (Turn("user", "Hvem \ud800 signerte?"),)
    assert refusal(AskRequest("toll \ud800 price")) == f"question: {SURROGATE_ERROR}"
    assert refusal(AskRequest("toll \ud800 price", broken_turn)) == f"question: {SURROGATE_ERROR}"
    assert refusal(AskRequest("toll price", broken_turn)) == f"history: {SURROGATE_ERROR}"
    assert refusal(AskRequest("toll price", filters=Filters(sources=("a\udfff",)))) == (
        f"source filter: {SURROGATE_ERROR}"
    )
