"""Hostile articles (tests/fixtures/hostile/) are shown as text: nothing they contain runs in the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import hostile_cases
from tests.browser.chat import INSPECT, OUR_TAGS, PANELS, ask, last_answer, open_filters

pytestmark = pytest.mark.browser


def test_hostile_articles_execute_nothing_in_the_chat(page, kilde_server, screenshot):
    page.goto(f"{kilde_server.url}/?lang=en")
    expect(page.locator("#kilde-question")).to_contain_text("Your question")
    title = page.title()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "evil.example" in r.url else None)
    cited = []
    for case in hostile_cases():
        page.locator("#kilde-new").click()  # each question on its own, not as a follow-up
        expect(page.locator("#kilde-conversation .kilde-empty")).to_be_visible()
        ask(page, case["question"])
        answer = last_answer(page)
        markers = answer.locator("button.kilde-cite")
        for i in range(markers.count()):
            markers.nth(i).click()
            expect(page.locator("#kilde-article .kilde-article")).to_be_visible()
        # Open the hostile article itself: its full text must render, escaped, with the quote marked.
        source = page.locator(f"#kilde-sources-panel .kilde-source:has-text('{case['article_id']}')")
        if source.count():
            cited.append(case["article_id"])
            source.first.locator("button.kilde-source-open").click()
            expect(page.locator(f"#kilde-article [data-article-id='{case['article_id']}']")).to_be_visible()
            expect(page.locator("#kilde-article #kilde-hl")).to_be_visible()
        seen = page.evaluate(INSPECT, PANELS)
        assert not page.dialogs, f"{case['file']}: a dialog opened: {page.dialogs}"
        assert seen["title"] == title, f"{case['file']}: document.title changed to {seen['title']!r}"
        assert seen["pwned"] == "undefined", f"{case['file']}: window.__pwned was set"
        assert set(seen["tags"]) <= OUR_TAGS, (
            f"{case['file']}: injected elements {set(seen['tags']) - OUR_TAGS}"
        )
        assert not seen["handlers"], f"{case['file']}: inline event handlers {seen['handlers']}"
        assert not seen["urls"], f"{case['file']}: hostile URLs in attributes {seen['urls']}"

    # The attacks were really on the page, as text: the articles were cited and opened.
    assert len(cited) == len(hostile_cases()), f"only {cited} were cited"
    assert not requests, f"the page requested {requests}"
    screenshot(page, "hostile")


def test_hostile_source_names_in_the_filter_list_are_plain_text(page, kilde_server):
    page.goto(f"{kilde_server.url}/?lang=en")
    open_filters(page)
    page.locator("#kilde-sources input").first.click()
    option = page.get_by_text("onmouseover=alert('source')", exact=False).first
    expect(option).to_be_visible()
    option.hover()
    page.wait_for_timeout(300)
    assert not page.dialogs
    assert page.locator("b[onmouseover]").count() == 0
