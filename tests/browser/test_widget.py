"""The widget embedded in host pages on other origins: allowed origins work, others are refused."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN
from tests.browser.chat import ask, last_answer

pytestmark = pytest.mark.browser

FETCH_ASK = """async (url) => {
  try {
    const r = await fetch(url + '/api/ask', {method: 'POST', headers: {'content-type': 'application/json'},
                                           body: JSON.stringify({question: 'Hva sier artikkel 4?'})});
    const body = await r.json();
    return {ok: r.ok, status: r.status, answerable: body.answerable};
  } catch (e) {
    return {ok: false, error: String(e)};
  }
}"""


def test_widget_in_an_iframe_on_an_allowed_origin_answers_with_a_highlighted_source(
    page, host_pages, screenshot
):
    page.goto(host_pages.origin + "/")
    frame = page.frame_locator("#kilde-embed iframe")
    expect(frame.locator("#kilde-widget-question textarea")).to_be_visible()
    ask(frame, DEMO_QUESTION_EN, prefix="kilde-widget")
    answer = last_answer(frame)
    expect(answer).to_contain_text("[1]")
    expect(frame.locator("#kilde-widget-sources-panel mark.kilde-quote").first).to_contain_text(
        ARTICLE4_OPENING
    )
    screenshot(page, "widget", docs=True)

    answer.locator("button.kilde-cite[data-n='1']").click()
    expect(frame.locator("#kilde-widget-article #kilde-hl")).to_contain_text(ARTICLE4_OPENING)
    expect(frame.locator("#kilde-widget-article #kilde-hl")).to_be_in_viewport()
    screenshot(page, "widget-article")


def test_widget_is_refused_in_a_page_from_an_origin_not_on_the_list(page, foreign_pages, kilde_server):
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(foreign_pages.origin + "/")
    page.wait_for_load_state("load")
    page.wait_for_timeout(2000)
    frame = page.frame_locator("#kilde-embed iframe")
    expect(frame.locator("textarea")).to_have_count(0)
    assert blocked, "Chromium reported no frame-ancestors violation"

    csp = httpx.get(kilde_server.url + "/widget/").headers["content-security-policy"]
    assert foreign_pages.origin not in csp


def test_api_calls_from_another_origin_need_that_origin_on_the_list(
    page, host_pages, foreign_pages, kilde_server
):
    page.goto(host_pages.origin + "/")
    allowed = page.evaluate(FETCH_ASK, kilde_server.url)
    assert allowed["ok"] and allowed["status"] == 200 and allowed["answerable"] is True

    page.goto(foreign_pages.origin + "/")
    refused = page.evaluate(FETCH_ASK, kilde_server.url)
    assert not refused["ok"] and "Failed to fetch" in refused.get("error", "")

    direct = httpx.post(
        kilde_server.url + "/api/ask",
        json={"question": "Hva sier artikkel 4?"},
        headers={"Origin": foreign_pages.origin},
    )
    assert direct.status_code == 403
    assert direct.json()["error"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in direct.headers


def test_widget_as_a_gradio_app_web_component(page, host_pages):
    page.goto(host_pages.origin + "/web-component")
    box = page.locator("gradio-app #kilde-widget-question textarea")
    expect(box).to_be_visible()
    ask(page, DEMO_QUESTION_EN, prefix="kilde-widget")
    expect(last_answer(page)).to_contain_text("[1]")
