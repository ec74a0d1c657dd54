"""What a screen reader is given, read from Chromium's accessibility tree: the chat and the widget announce a
finished answer once, through a polite live region, and the language switch is a named radio group."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import DEMO_QUESTION_EN
from tests.browser.chat import ask, last_answer, part

pytestmark = pytest.mark.browser

# Every text the live region holds from now on, and a mark on the element itself: a live region that is
# replaced by a new element is not announced, so the mark must survive the whole answer.
WATCH_LIVE = """(region) => {
  region.__kildeSeen = [];
  region.__kildeMark = true;
  new MutationObserver(() => region.__kildeSeen.push(region.textContent))
    .observe(region, {childList: true, subtree: true, characterData: true});
}"""
SEEN = "(region) => ({mark: region.__kildeMark === true, seen: region.__kildeSeen})"


@pytest.mark.parametrize("path, prefix", [("/", "kilde"), ("/widget/", "kilde-widget")])
def test_a_finished_answer_is_announced_once_through_a_polite_live_region(page, kilde_server, path, prefix):
    """Nothing told a screen reader that an answer had arrived: the conversation was no live region."""
    page.goto(f"{kilde_server.url}{path}?lang=en")
    conversation = page.locator(part(prefix, "conversation"))
    region = conversation.get_by_role("status")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_text("")
    region.evaluate(WATCH_LIVE)

    ask(page, DEMO_QUESTION_EN, prefix=prefix)
    answer_text = last_answer(page).locator(".kilde-text").inner_text()
    assert "[1]" in answer_text
    expect(region).to_have_text(answer_text)
    state = region.evaluate(SEEN)
    # The same element throughout, and it changed once, to the finished answer: no streamed pieces.
    assert state["mark"], "the live region was replaced, so the answer is not announced"
    assert [text for text in state["seen"] if text] == [answer_text]

    # A new conversation empties it without a word (a removal is not announced).
    page.locator(part(prefix, "new")).click()
    expect(region).to_have_text("")
    assert region.evaluate(SEEN)["mark"]


@pytest.mark.parametrize("path, prefix", [("/", "kilde"), ("/widget/", "kilde-widget")])
def test_the_language_switch_is_a_radio_group_named_in_the_page_language(page, kilde_server, path, prefix):
    """The radio group "Norsk / English" had no name of its own: a screen reader said only "radio group"."""
    page.goto(f"{kilde_server.url}{path}?lang=en")
    group = page.get_by_role("radiogroup", name="Interface language")
    expect(group).to_be_visible()
    expect(group.get_by_role("radio", name="English")).to_be_checked()
    group.get_by_role("radio", name="Norsk").check()
    expect(page.locator(part(prefix, "ask"))).to_have_text("Spør")
    expect(page.get_by_role("radiogroup", name="Språk i grensesnittet")).to_be_visible()

    page.goto(f"{kilde_server.url}{path}?lang=nb")
    expect(page.get_by_role("radiogroup", name="Språk i grensesnittet")).to_be_visible()
