"""The chat while an answer is still streaming: a second question, "New conversation", leaving the page.

The generative backend answers from the scripted model (assistant/testing/scripted_llm.py), whose stream is held
after its first words until the test wakes it, so each action lands mid-answer."""

from __future__ import annotations

import threading

import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import DEMO_QUESTION_EN
from assistant.testing.scripted_llm import Reply
from tests.browser.chat import ANSWERED

pytestmark = pytest.mark.browser

# Sentences of the seed article, as a model that quotes it would answer.
FIRST_ANSWER = (
    "Artikkel 4 i avtalen sier: «Hvis en av partene står overfor en væpnet invasjon og er i krigstilstand, vil"
    " den andre parten umiddelbart bruke alle tilgjengelige midler for å gi militær og annen hjelp i henhold"
    " til artikkel 51 i FN-pakten og lovene i hvert land.» [1]"
)
SECOND_QUESTION = "Who signed the new defence pact between Russia and North Korea?"
SECOND_ANSWER = "Avtalen om et «omfattende strategisk partnerskap» ble signert av Putin og Nord-Koreas leder Kim Jong Un. [1]"
CONDENSE_PROMPT = "Conversation:"  # how the condense prompt hands the model the conversation


def held_reply(wake: threading.Event) -> Reply:
    """The first answer: its first words, then nothing until `wake` is set."""
    return Reply(FIRST_ANSWER, stall_after=5, stall_s=120, wake=wake)


def ask_and_hold(page, url: str, llm, wake: threading.Event, *later: Reply) -> None:
    """Open the chat, ask the demo question and wait until its answer has begun to stream and is held."""
    llm.reset()
    llm.script(held_reply(wake), *later)
    page.goto(f"{url}/?lang=en")
    box = page.locator("#kilde-question textarea")
    box.fill(DEMO_QUESTION_EN)
    box.press("Enter")
    expect(page.locator(".kilde-streaming .kilde-text")).to_contain_text("Artikkel")


def condense_prompts(llm) -> list[str]:
    """The user messages of every condense request the model received (a follow-up's, with its history)."""
    said = [m.get("content") or "" for r in llm.chat_requests for m in r.body.get("messages", [])]
    return [text for text in said if text.startswith(CONDENSE_PROMPT)]


def test_a_question_sent_while_an_answer_streams_is_asked_after_it_with_it_in_the_history(
    page, generative_server, llm
):
    """Enter pressed on a second question while the first answer streamed did nothing: the question stayed in
    the box, never asked, and nothing said so."""
    server, _assistant = generative_server
    wake = threading.Event()
    ask_and_hold(page, server.url, llm, wake, Reply(SECOND_QUESTION), Reply(SECOND_ANSWER))
    box = page.locator("#kilde-question textarea")
    box.fill(SECOND_QUESTION)
    box.press("Enter")
    wake.set()

    answers = page.locator(ANSWERED)
    answers.nth(1).wait_for(state="visible")
    expect(page.locator(".kilde-user .kilde-text")).to_have_text([DEMO_QUESTION_EN, SECOND_QUESTION])
    expect(answers).to_have_count(2)
    expect(answers.nth(0)).to_contain_text("militær og annen hjelp")
    expect(box).to_have_value("")
    # The second question was read as a follow-up of the whole first exchange, not of a piece of it.
    (prompt,) = condense_prompts(llm)
    lines = prompt.splitlines()
    assert f"User: {DEMO_QUESTION_EN}" in lines, prompt
    (said,) = [line for line in lines if line.startswith("Assistant: ")]
    assert said.startswith("Assistant: Artikkel 4") and "lovene i hvert land" in said, prompt


def test_new_conversation_while_an_answer_streams_stays_new(page, generative_server, llm):
    """ "New conversation" clicked mid-answer emptied the page, but the answer, going on, put the old
    conversation back when it finished, and the next question was read as a follow-up of it."""
    server, _assistant = generative_server
    wake = threading.Event()
    ask_and_hold(page, server.url, llm, wake, Reply(SECOND_ANSWER), Reply(SECOND_ANSWER))
    page.locator("#kilde-new").click()
    expect(page.locator("#kilde-conversation .kilde-empty")).to_be_visible()
    wake.set()

    box = page.locator("#kilde-question textarea")
    box.fill(SECOND_QUESTION)
    box.press("Enter")  # asked once the cut answer's event is over
    page.locator(ANSWERED).first.wait_for(state="visible")
    expect(page.locator(".kilde-user .kilde-text")).to_have_text([SECOND_QUESTION])
    expect(page.locator(".kilde-bot")).to_have_count(1)
    expect(page.locator("#kilde-conversation .kilde-standalone")).to_have_count(0)
    assert condense_prompts(llm) == []  # a first question: no history to read it with


def test_what_the_model_has_sent_is_shown_while_it_pauses(page, generative_server, llm):
    """The chat shows at most about 20 updates a second and held back the pieces that came sooner after the
    last one: while the model paused after its first words, the page showed "Artikkel" alone until more came."""
    server, _assistant = generative_server
    wake = threading.Event()
    ask_and_hold(page, server.url, llm, wake)
    try:
        # Its first five pieces, all sent before the pause; Kilde gives the model 30 s before it falls back.
        expect(page.locator(".kilde-streaming .kilde-text")).to_have_text(
            "Artikkel 4 i avtalen sier:", timeout=20_000
        )
    finally:
        wake.set()
    page.locator(ANSWERED).first.wait_for(state="visible")
