"""The chat page in Chromium: the conversation follows the newest answer, a [n] click scrolls only the
article panel, the page is in the browser's language from its first paint, and "New conversation" has
a row of its own."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import DEMO_QUESTION_EN
from tests.browser.chat import FIRST_TEXTS, TEXT_LINES, ask, first_texts, last_answer

pytestmark = pytest.mark.browser

FOLLOW_UP = "And how did Japan react?"
QUESTIONS = [
    DEMO_QUESTION_EN,
    FOLLOW_UP,
    "Who signed the defence pact between Russia and North Korea?",
    "What did NATO secretary general Jens Stoltenberg say about the agreement?",
    "Hva sier artikkel 51 i FN-pakten?",
]

# Is the newest answer's end inside the conversation box (the box that scrolls), and the page unscrolled?
NEWEST_IN_VIEW = """() => {
  const answers = document.querySelectorAll('#kilde-conversation .kilde-bot');
  const last = answers[answers.length - 1];
  if (!last || last.classList.contains('kilde-streaming')) return false;
  let box = last.parentElement;
  while (box && !['auto', 'scroll'].includes(getComputedStyle(box).overflowY)) box = box.parentElement;
  const a = last.getBoundingClientRect(), b = box.getBoundingClientRect();
  return a.bottom <= b.bottom + 1 && a.bottom > b.top && window.scrollY === 0;
}"""
OVERFLOWS = """() => {
  const last = document.querySelector('#kilde-conversation .kilde-bot');
  let box = last.parentElement;
  while (box && !['auto', 'scroll'].includes(getComputedStyle(box).overflowY)) box = box.parentElement;
  return box.scrollHeight > box.clientHeight + 50;
}"""


def open_chat(page, server, query="?lang=en"):
    page.goto(f"{server.url}/{query}")
    expect(page.locator("#kilde-question textarea")).to_be_visible()


def test_the_conversation_always_scrolls_to_the_newest_answer(page, kilde_server):
    """Gradio's own autoscroll skipped an update when the answer grew by more than 100 px at once (2 of 3
    runs): three rounds of five questions each, the newest answer checked after every one."""
    open_chat(page, kilde_server)
    for round_ in range(3):
        page.locator("#kilde-new").click()
        expect(page.locator("#kilde-conversation .kilde-empty")).to_be_visible()
        for question in QUESTIONS:
            ask(page, question)
            page.wait_for_function(NEWEST_IN_VIEW, timeout=5_000)
            expect(last_answer(page)).to_be_in_viewport()
        assert page.evaluate(OVERFLOWS), f"round {round_}: the conversation never overflowed its box"


def test_a_citation_click_scrolls_only_the_article_panel(page, kilde_server, screenshot):
    open_chat(page, kilde_server)
    ask(page, DEMO_QUESTION_EN)
    ask(page, FOLLOW_UP)
    follow_up = last_answer(page)
    expect(follow_up.locator(".kilde-standalone")).to_be_visible()
    follow_up.locator("button.kilde-cite").last.click()  # the citation of the follow-up's last sentence

    highlight = page.locator("#kilde-article #kilde-hl")
    expect(highlight).to_be_in_viewport()
    assert page.evaluate("window.scrollY") == 0, "the click scrolled the page"
    expect(page.locator("#kilde-header h1")).to_be_in_viewport(ratio=1)
    expect(page.locator("#kilde-question textarea")).to_be_in_viewport(ratio=1)
    # The panel's heading sits above the box that scrolls, so it covers no line of the article.
    heading = page.locator("#kilde-article .kilde-panel-heading")
    expect(heading).to_have_text("Full article")
    box = page.locator("#kilde-article .kilde-scroll").bounding_box()
    assert heading.bounding_box()["y"] + heading.bounding_box()["height"] <= box["y"] + 1
    assert page.locator("#kilde-article .kilde-scroll").evaluate("el => el.scrollTop") > 0
    mark = highlight.bounding_box()
    assert box["y"] <= mark["y"] <= box["y"] + box["height"]
    expect(page.locator("#kilde-sources-panel .kilde-panel-heading")).to_have_text("Cited passages")
    screenshot(page, "chat", docs=True)


def test_an_english_browser_gets_the_english_page_from_the_first_paint(page, kilde_server):
    page.add_init_script(FIRST_TEXTS)
    open_chat(page, kilde_server, query="")  # no ?lang=: the browser's Accept-Language (en-GB)
    first = first_texts(page, "ask", "new", "article", "question")
    assert first["ask"] == "Ask" and first["new"] == "New conversation", first
    assert first["article"].startswith("Full article") and "Click a [n] marker" in first["article"], first
    assert "Your question" in first["question"], first
    expect(page.locator("#kilde-ask")).to_have_text("Ask")
    expect(page.locator("#kilde-question textarea")).to_have_attribute(
        "placeholder", re.compile("^For example: What does Article 4")
    )
    expect(page.locator("#kilde-article")).to_contain_text("Click a [n] marker or a source")
    expect(page.locator("#kilde-language input[value='en']")).to_be_checked()
    # Gradio's "Use via API" panel cannot follow the page language: it is not offered at all.
    expect(page.get_by_text("Use via API")).to_have_count(0)
    page.goto(f"{kilde_server.url}/?view=api")
    expect(page.locator("#kilde-question textarea")).to_be_visible()
    expect(page.get_by_text("gradio_client")).to_have_count(0)


def test_lang_in_the_address_wins_over_the_browser_language(page, kilde_server):
    page.add_init_script(FIRST_TEXTS)
    open_chat(page, kilde_server, query="?lang=nb")
    first = first_texts(page, "ask", "new", "article")
    assert first["ask"] == "Spør" and first["new"] == "Ny samtale", first
    assert first["article"].startswith("Hele artikkelen"), first


def test_switching_language_relabels_an_open_article(page, kilde_server):
    open_chat(page, kilde_server)
    ask(page, DEMO_QUESTION_EN)
    last_answer(page).locator("button.kilde-cite").first.click()
    expect(page.locator("#kilde-article #kilde-hl")).to_be_visible()
    page.locator("#kilde-language").get_by_text("Norsk").click()
    expect(page.locator("#kilde-article .kilde-panel-heading")).to_have_text("Hele artikkelen")
    expect(page.locator("#kilde-article #kilde-hl")).to_be_visible()  # still the open article
    page.locator("#kilde-new").click()
    expect(page.locator("#kilde-article")).to_contain_text("Klikk på en [n]-markør")


def test_new_conversation_is_one_line_and_not_in_the_feedback_row(page, kilde_server):
    for lang, label in (("en", "New conversation"), ("nb", "Ny samtale")):
        open_chat(page, kilde_server, query=f"?lang={lang}")
        button = page.locator("#kilde-new")
        expect(button).to_have_text(label)
        assert button.evaluate(TEXT_LINES) == 1, f"{label!r} wraps"
        assert page.locator("#kilde-feedback-row #kilde-new").count() == 0
        expect(page.locator("#kilde-feedback-row #kilde-up")).to_have_count(1)
