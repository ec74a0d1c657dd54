"""The chat in a real Chromium against a real `kilde serve`: answer, [n] marker, highlighted quote, and more."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN, SEED_ID
from tests.browser.chat import ANSWERED, ask, fill_filter, last_answer, open_filters

pytestmark = pytest.mark.browser


def open_chat(page, server, lang="en"):
    page.goto(f"{server.url}/?lang={lang}")
    label = "Your question" if lang == "en" else "Spørsmålet ditt"
    expect(page.locator("#kilde-question")).to_contain_text(label)


def test_article4_answer_marker_opens_the_article_at_the_highlighted_quote(page, kilde_server, screenshot):
    open_chat(page, kilde_server)
    ask(page, DEMO_QUESTION_EN)
    answer = last_answer(page)
    expect(answer).to_have_class(re.compile("kilde-answered"))
    expect(answer).to_contain_text("[1]")
    expect(answer).to_contain_text(ARTICLE4_OPENING)

    source = page.locator("#kilde-sources-panel .kilde-source").first
    expect(source).to_contain_text("Nord-Korea og Russland inngår forsvarspakt")
    expect(source).to_contain_text("2024-11-27")
    expect(source).to_contain_text("Geopolitika")
    expect(source.locator("mark.kilde-quote")).to_contain_text(ARTICLE4_OPENING)

    answer.locator("button.kilde-cite[data-n='1']").click()
    highlight = page.locator("#kilde-article #kilde-hl")
    expect(highlight).to_be_visible()
    expect(highlight).to_be_in_viewport()
    expect(page.locator("#kilde-article")).to_contain_text("Nord-Korea og Russland inngår forsvarspakt")

    # The highlight sits at the citation's exact offsets into the stored article text.
    where = source.locator(".kilde-where").inner_text()
    start, end = map(int, re.search(r"(\d+)\D+(\d+)$", where).groups())
    article = httpx.get(f"{kilde_server.url}/api/articles/{SEED_ID}").json()
    assert highlight.text_content() == article["text"][start:end]
    assert article["text"][start:end].startswith(ARTICLE4_OPENING)

    screenshot(page, "chat-article4")


def test_clicking_a_source_opens_its_article(page, kilde_server):
    open_chat(page, kilde_server, "nb")
    ask(page, "Hva forplikter artikkel 4 hver av partene til?")
    page.locator("#kilde-sources-panel button.kilde-source-open").first.click()
    expect(page.locator("#kilde-article #kilde-hl")).to_contain_text(ARTICLE4_OPENING)
    expect(page.locator("#kilde-article #kilde-hl")).to_be_in_viewport()


def test_filters_apply_and_an_empty_result_shows_not_in_the_archive(page, kilde_server):
    open_chat(page, kilde_server)
    open_filters(page)
    fill_filter(page, "since", "2030-01-01")
    ask(page, DEMO_QUESTION_EN)
    answer = last_answer(page)
    expect(answer).to_have_class(re.compile("kilde-notfound"))
    expect(answer).to_contain_text("Not in the archive")
    expect(answer.locator("button.kilde-cite")).to_have_count(0)
    expect(page.locator("#kilde-sources-panel .kilde-source")).to_have_count(0)


def test_a_bad_date_filter_is_reported_in_the_page(page, kilde_server):
    open_chat(page, kilde_server)
    open_filters(page)
    fill_filter(page, "until", "last tuesday")
    box = page.locator("#kilde-question textarea")
    logged = len(kilde_server.log())
    box.fill(DEMO_QUESTION_EN)
    box.press("Enter")
    expect(page.get_by_text("is not a date")).to_be_visible()
    assert "Traceback" not in page.content()
    new_lines = kilde_server.log()[logged:].splitlines()  # the server's log: one line at most, no traceback
    assert len(new_lines) <= 1 and not any("Traceback" in line for line in new_lines), new_lines


def test_follow_up_question_uses_the_conversation(page, kilde_server):
    open_chat(page, kilde_server)
    ask(page, "Who signed the new defence pact between Russia and North Korea?")
    ask(page, "And how did Japan react?")
    followup = last_answer(page)
    expect(followup.locator(".kilde-standalone")).to_contain_text(
        "defence pact between Russia and North Korea"
    )
    expect(page.locator(".kilde-bot")).to_have_count(2)


def test_thumbs_up_with_comment_is_appended_as_an_eval_item(page, kilde_server, ui_index):
    feedback_path = ui_index.feedback_path
    before = feedback_path.read_text().count("\n") if feedback_path.exists() else 0
    open_chat(page, kilde_server)
    ask(page, DEMO_QUESTION_EN)
    page.locator("#kilde-comment textarea").fill("Exactly the paragraph I needed")
    page.locator("#kilde-up").click()
    expect(page.locator("#kilde-feedback-status")).to_contain_text("feedback was saved")

    lines = feedback_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == before + 1
    record = json.loads(lines[-1])
    assert record["question"] == DEMO_QUESTION_EN and record["rating"] == "up"
    assert record["comment"] == "Exactly the paragraph I needed"
    assert record["citations"][0]["article_id"] == SEED_ID
    assert record["gold_article_ids"] == [SEED_ID]
    assert record["gold_passages"][0].startswith(ARTICLE4_OPENING)

    from evals.datasets import item_from_object

    item = item_from_object(record, "feedback", "feedback.jsonl:1")
    assert item.question == DEMO_QUESTION_EN and item.answerable and item.gold_passages


def test_interface_text_switches_between_norwegian_and_english(page, kilde_server):
    open_chat(page, kilde_server, "nb")
    expect(page.locator("#kilde-ask")).to_have_text("Spør")
    page.locator("#kilde-language").get_by_text("English").click()
    expect(page.locator("#kilde-question")).to_contain_text("Your question")
    expect(page.locator("#kilde-ask")).to_have_text("Ask")


def test_a_question_typed_before_new_conversation_lands_is_kept_and_answered(page, kilde_server):
    """The reply to "New conversation" is held here until the next question is typed. It used to empty the
    question box when it landed, so Enter sent nothing and no answer came (seen in CI, under load)."""
    open_chat(page, kilde_server)
    ask(page, DEMO_QUESTION_EN)
    held = []
    page.route("**/gradio_api/run/**", lambda route: held.append(route))
    with page.expect_request("**/gradio_api/run/**"):
        page.locator("#kilde-new").click()
    box = page.locator("#kilde-question textarea")
    box.fill("How many runners are registered for the Bergvik Marathon?")
    assert len(held) == 1, held  # the reply is still on its way while the question is typed
    for route in held:
        route.continue_()
    page.unroute("**/gradio_api/run/**")
    expect(page.locator("#kilde-conversation .kilde-empty")).to_be_visible()
    expect(box).to_have_value("How many runners are registered for the Bergvik Marathon?")
    box.press("Enter")
    page.locator(ANSWERED).first.wait_for(state="visible")
    expect(page.locator(".kilde-bot")).to_have_count(1)


def test_a_right_to_left_question_is_shown_right_to_left(page, kilde_server):
    """An Arabic question was shown back left to right, its question mark at the wrong end, as the page is."""
    open_chat(page, kilde_server)
    arabic = "ما الذي تلزم به المادة 4 كل طرف؟"
    ask(page, arabic)
    ask(page, DEMO_QUESTION_EN)
    asked = page.locator(".kilde-user .kilde-text")
    expect(asked).to_have_text([arabic, DEMO_QUESTION_EN])
    direction = "(element) => getComputedStyle(element).direction"
    assert [asked.nth(i).evaluate(direction) for i in range(2)] == ["rtl", "ltr"]
    assert last_answer(page).locator(".kilde-text").evaluate(direction) == "ltr"


# The direction the element's text is laid out in.
DIRECTION = "(element) => getComputedStyle(element).direction"


def test_the_question_box_takes_its_direction_from_what_is_typed(page, kilde_server):
    """The question box was `dir="ltr"` (Gradio's textbox), so an Arabic question was typed left to right, its
    question mark at the wrong end, though the conversation showed it right to left. It stays `auto` after the
    language switch, which updates the box, and after a question was asked, which empties it."""
    open_chat(page, kilde_server, "nb")
    box = page.locator("#kilde-question textarea")
    arabic = "ما الذي تلزم به المادة 4 كل طرف؟"
    box.fill(arabic)
    expect(box).to_have_attribute("dir", "auto")
    assert box.evaluate(DIRECTION) == "rtl"
    box.fill(DEMO_QUESTION_EN)
    assert box.evaluate(DIRECTION) == "ltr"
    page.get_by_label("English").check()
    expect(page.locator("#kilde-question")).to_contain_text("Your question")
    ask(page, arabic)
    expect(box).to_have_value("")
    box.fill(arabic)
    expect(box).to_have_attribute("dir", "auto")
    assert box.evaluate(DIRECTION) == "rtl"


def test_text_that_is_not_text_is_refused_in_the_page_language(page, kilde_server):
    """A question holding a lone surrogate (half of a UTF-16 pair, which a script can put in the box) is refused
    before the question checks: it was refused in English on the Norwegian page, field name first ("question:
    contains a lone surrogate …"). A feedback comment too long or holding one was refused in English too, and the
    page showed "Error" alone: it is said on the feedback's status line now, the comment kept."""
    open_chat(page, kilde_server, "nb")
    box = page.locator("#kilde-question textarea")
    typed = "Hva forplikter artikkel 4 hver av partene til? \ud800"
    box.evaluate(
        "(el, text) => { el.value = text; el.dispatchEvent(new Event('input', {bubbles: true})); }", typed
    )
    box.press("Enter")
    expect(page.get_by_text("Spørsmålet inneholder en enslig surrogat")).to_be_visible()
    expect(page.locator(".kilde-user")).to_have_count(0)
    ask(page, "Hva forplikter artikkel 4 hver av partene til?")
    comment = page.locator("#kilde-comment textarea")
    for written, said in [
        ("bra svar \udc80", "Kommentaren inneholder en enslig surrogat"),
        ("x" * 2001, "Kommentaren er 2001 tegn lang; grensen er 2000."),
    ]:
        comment.evaluate(
            "(el, text) => { el.value = text; el.dispatchEvent(new Event('input', {bubbles: true})); }",
            written,
        )
        page.locator("#kilde-up").click()
        expect(page.locator("#kilde-feedback-status")).to_contain_text(said)
        expect(comment).to_have_value(written)
    expect(page.get_by_text("question:")).to_have_count(0)
    expect(page.get_by_text("comment:")).to_have_count(0)


def test_a_vote_that_cannot_be_saved_is_said_in_the_page_language_and_answering_goes_on(
    page, kilde_server, ui_index
):
    """A feedback log that cannot be written (a folder in its place) raised: the page showed "Error" and the
    server's English line. It is said on the feedback's status line now, in the page's language, the comment kept,
    and the next question is answered."""
    path = ui_index.feedback_path
    kept = path.read_bytes() if path.exists() else None
    open_chat(page, kilde_server, "nb")
    ask(page, "Hva forplikter artikkel 4 hver av partene til?")
    path.unlink(missing_ok=True)
    path.mkdir()
    try:
        page.locator("#kilde-comment textarea").fill("Akkurat det jeg trengte")
        page.locator("#kilde-up").click()
        expect(page.locator("#kilde-feedback-status")).to_contain_text(
            "Tilbakemeldingen kunne ikke lagres; svarene påvirkes ikke."
        )
        expect(page.locator("#kilde-comment textarea")).to_have_value("Akkurat det jeg trengte")
        expect(page.get_by_text("could not be saved")).to_have_count(0)
        expect(page.get_by_text("Error", exact=True)).to_have_count(0)
        ask(page, "Hvem signerte pakten?")
        expect(last_answer(page)).to_be_visible()
    finally:
        path.rmdir()
        if kept is not None:
            path.write_bytes(kept)
    page.locator("#kilde-up").click()
    expect(page.locator("#kilde-feedback-status")).to_contain_text("Takk, tilbakemeldingen er lagret.")


def test_a_question_that_cannot_be_asked_is_refused_in_the_page_language_and_kept(page, kilde_server):
    """On the Norwegian page, a question over the limit was refused in English, field name first ("question:
    the question is 2001 characters; the limit is 2000"), as were an empty question and one of markup alone."""
    open_chat(page, kilde_server, "nb")
    box = page.locator("#kilde-question textarea")
    long_question = ("Hva forplikter artikkel 4 hver av partene til? " * 50)[:2001]
    for typed, said in [
        (long_question, "Spørsmålet er 2001 tegn langt; grensen er 2000."),
        ("   ", "Spørsmålet er tomt."),
        ("<b></b>", "Spørsmålet er bare HTML-koder, uten ord å søke etter."),
    ]:
        box.fill(typed)
        box.press("Enter")
        expect(page.get_by_text(said)).to_be_visible()
        expect(box).to_have_value(typed)  # kept, to be shortened or corrected
    expect(page.get_by_text("question:")).to_have_count(0)
    expect(page.locator(".kilde-user")).to_have_count(0)
