"""A greeting, a thank-you or "what can you do?" alone is not searched: Kilde says what it answers, in the
message's language, and cites nothing. Anything more is a question."""

from __future__ import annotations

import httpx
import pytest

from assistant.answering.context import AskRequest
from assistant.answering.small_talk import BACKEND, small_talk
from assistant.core.types import Turn
from assistant.testing.corpus import DEMO_QUESTION_EN
from ui import render


@pytest.mark.parametrize(
    ("message", "kind", "language"),
    [
        ("Hei", "greeting", "nb"),
        ("hei!!", "greeting", "nb"),
        ("Hei Kilde 👋", "greeting", "nb"),
        ("Hello there.", "greeting", "en"),
        ("God morgon", "greeting", "nn"),
        ("Thanks!", "thanks", "en"),
        ("Tusen takk :)", "thanks", "nb"),
        ("What can you do?", "help", "en"),
        ("Kva kan du?", "help", "nn"),
        ("Hva kan du gjøre?", "help", "nb"),
        ("Hva kan du hjelpe meg med?", "help", "nb"),
        ("Hei, hva kan du hjelpe meg med?", "help", "nb"),
        ("Hva er Kilde?", "help", "nb"),
        ("Hvilke spørsmål kan jeg stille?", "help", "nb"),
        ("What can you help me with?", "help", "en"),
        ("Hello! What kind of questions can I ask?", "help", "en"),
        ("How do I use this?", "help", "en"),
        ("Kva kan eg spørje om?", "help", "nn"),
        ("Hei, tusen takk!", "thanks", "nb"),
    ],
)
def test_greetings_thanks_and_questions_about_kilde_are_small_talk(message, kind, language):
    chat = small_talk(message)
    assert chat is not None and (chat.kind, chat.language) == (kind, language)
    assert "[" not in chat.reply  # cites nothing


@pytest.mark.parametrize(
    "message",
    [
        "Hei, hvem vant valget i 2019?",
        "Help me find the budget",
        "Takk-ordningen for frivillige",
        "Hvem er dronningen?",
        "Hva vet du om Putin?",
        "Hei, hva kan du si om forsvarspakten?",
        "What can you tell me about the pact?",
        "Hello, how does the pact work?",
    ],
)
def test_a_message_with_more_than_the_phrase_is_a_question(message):
    assert small_talk(message) is None


def test_a_greeting_is_answered_without_searching_and_cites_nothing(assistant, monkeypatch):
    def no_search(*args, **kwargs):
        raise AssertionError("small talk was searched")

    monkeypatch.setattr(assistant.retriever, "retrieve", no_search)
    answer = assistant.ask(AskRequest("Hei!"))
    assert not answer.answerable and answer.citations == () and answer.retrieved == ()
    assert answer.language == "nb" and answer.backend == BACKEND and "total" in answer.timings_ms
    assert answer.answer.startswith("Hei! Jeg svarer på spørsmål om nyhetsarkivet")


def test_thanks_after_an_answer_is_not_a_follow_up(assistant):
    first = assistant.ask(AskRequest(DEMO_QUESTION_EN))
    thanks = assistant.ask(
        AskRequest("Thanks!", history=(Turn("user", DEMO_QUESTION_EN), Turn("assistant", first.answer)))
    )
    assert thanks.backend == BACKEND and thanks.citations == () and thanks.language == "en"
    assert thanks.standalone_question is None  # not searched as "Thanks! What does Article 4 …"


def test_the_chat_shows_small_talk_without_the_not_in_the_archive_frame(assistant):
    answer = assistant.ask(AskRequest("What can you do?"))
    page = render.conversation_html([render.Exchange("What can you do?", answer)], "en")
    assert "kilde-smalltalk" in page and "I answer questions about the news archive" in page
    assert "Not in the archive" not in page
    refused = assistant.ask(AskRequest("Hva mente Zyxwvut-utvalget om forsvarspakten?"))
    assert "Not in the archive" in render.conversation_html([render.Exchange("?", refused)], "en")


def test_a_question_about_what_kilde_helps_with_is_not_searched(assistant, monkeypatch):
    # it was searched, and quoted an op-ed's "Her kan du lese mer om å sende inn innlegg til oss"
    def no_search(*args, **kwargs):
        raise AssertionError("a question about Kilde was searched")

    monkeypatch.setattr(assistant.retriever, "retrieve", no_search)
    answer = assistant.ask(AskRequest("Hei! Hva kan du hjelpe meg med?"))
    assert answer.backend == BACKEND and answer.citations == () and answer.language == "nb"
    assert answer.answer.startswith("Jeg svarer på spørsmål om nyhetsarkivet")


def test_the_api_answers_a_greeting_with_the_reply(api):
    body = httpx.post(api.url + "/api/ask", json={"question": "Hello"}, timeout=60).json()
    assert body["backend"] == BACKEND and body["answerable"] is False and body["citations"] == []
    assert body["answer"].startswith("Hello! I answer questions about the news archive")
