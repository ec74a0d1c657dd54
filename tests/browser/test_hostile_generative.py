"""The generative backend in the browser: the scripted model obeys every hostile article and echoes script,
event handlers, javascript: links, Markdown links and images and outside links. Nothing runs, no dialog opens,
no element or link of the attacker's appears, and the page requests nothing from anywhere but Kilde.
(The extractive backend: test_hostile.py.)"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import hostile_cases
from assistant.testing.scripted_llm import Reply
from tests.browser.chat import INSPECT, OUR_TAGS, PANELS, ask, last_answer, part
from tests.hostile_replies import HOSTILE_QUESTION_PREFIX, obedient_reply

pytestmark = pytest.mark.browser

WIDGET_PANELS = PANELS.replace("#kilde-", ".kilde-widget-")


def watch_requests(page, own_url: str) -> list[str]:
    """Every request the page makes to anywhere but the Kilde server."""
    foreign: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith((own_url, "data:")) else None)
    return foreign


def check_page(page, panels: str, title: str, label: str) -> None:
    seen = page.evaluate(INSPECT, panels)
    assert not page.dialogs, f"{label}: a dialog opened: {page.dialogs}"
    assert seen["title"] == title, f"{label}: document.title changed to {seen['title']!r}"
    assert seen["pwned"] == "undefined", f"{label}: window.__pwned was set"
    assert set(seen["tags"]) <= OUR_TAGS, f"{label}: injected elements {set(seen['tags']) - OUR_TAGS}"
    assert not seen["handlers"], f"{label}: inline event handlers {seen['handlers']}"
    assert not seen["urls"], f"{label}: hostile URLs in attributes {seen['urls']}"
    assert page.locator(panels.replace(",", " a,") + " a").count() == 0, f"{label}: a link in the panels"


def ask_obedient(page, assistant, llm, case, prefix: str) -> None:
    """Script the model to answer `case` honestly and then echo every payload, ask, and check the answer."""
    reply, _n, _hit = obedient_reply(assistant, case)
    llm.reset()
    llm.script(Reply(reply))
    ask(page, case["question"], prefix=prefix)
    answer = last_answer(page)
    assert llm.chat_requests, f"{case['file']}: the model was not asked"
    expect(answer).to_have_class(re.compile(r"\bkilde-answered\b"))
    shown = answer.inner_text()
    assert any(a.lower() in shown.lower() for a in case["answers"]), shown
    for payload in ("evil.example", "javascript:", "__pwned", "<script", "onerror", "![", "]("):
        assert payload not in shown, f"{case['file']}: {payload!r} is in the answer"
    markers = answer.locator("button.kilde-cite")
    assert markers.count() >= 1
    for m in range(markers.count()):
        markers.nth(m).click()
        expect(
            page.locator(f"{part(prefix, 'article')} [data-article-id='{case['article_id']}']")
        ).to_have_count(1)


def ask_hostile_question(page, assistant, llm, case, prefix: str) -> None:
    """A question carrying payloads of its own: shown back as text, whatever the answer."""
    reply, _n, _hit = obedient_reply(assistant, case)
    llm.reset()
    llm.script(Reply(reply))
    ask(page, HOSTILE_QUESTION_PREFIX + case["question"], prefix=prefix)
    expect(page.locator(f"{part(prefix, 'conversation')} .kilde-user").last).to_contain_text("window.__pwned")


def test_obedient_model_output_executes_nothing_in_the_chat(page, generative_server, llm):
    server, assistant = generative_server
    foreign = watch_requests(page, server.url)
    page.goto(f"{server.url}/?lang=en")
    expect(page.locator("#kilde-question")).to_contain_text("Your question")
    title = page.title()
    cases = hostile_cases()
    for case in cases:
        page.locator("#kilde-new").click()  # each question on its own, not as a follow-up
        expect(page.locator("#kilde-conversation .kilde-empty")).to_be_visible()
        ask_obedient(page, assistant, llm, case, "kilde")
        check_page(page, PANELS, title, case["file"])
    ask_hostile_question(page, assistant, llm, cases[0], "kilde")
    check_page(page, PANELS, title, "hostile question")
    assert not foreign, f"the page requested {foreign}"


def test_obedient_model_output_executes_nothing_in_the_widget(page, generative_server, llm):
    server, assistant = generative_server
    foreign = watch_requests(page, server.url)
    page.goto(f"{server.url}/widget/?lang=en")
    expect(page.locator(".kilde-widget-question textarea")).to_be_visible()
    title = page.title()
    cases = [c for c in hostile_cases() if c["file"].endswith((".html", ".json"))]
    for case in cases:
        page.locator(".kilde-widget-new").click()
        expect(page.locator(".kilde-widget-conversation .kilde-empty")).to_be_visible()
        ask_obedient(page, assistant, llm, case, "kilde-widget")
        check_page(page, WIDGET_PANELS, title, case["file"])
    ask_hostile_question(page, assistant, llm, cases[0], "kilde-widget")
    check_page(page, WIDGET_PANELS, title, "hostile question")
    assert not foreign, f"the page requested {foreign}"
