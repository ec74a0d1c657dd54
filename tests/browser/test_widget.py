"""The widget embedded in host pages on other origins: allowed origins work, others are refused."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import ARTICLE4_OPENING, DEMO_QUESTION_EN
from tests.browser.chat import (
    ANSWERED,
    FIRST_TEXTS,
    TEXT_LINES,
    WIDGET,
    ask,
    first_texts,
    last_answer,
    part,
)

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


def widget_frame(page):
    return next(f for f in page.frames if "/widget/" in f.url)


def test_widget_in_an_iframe_on_an_allowed_origin_answers_with_a_highlighted_source(
    page, host_pages, screenshot
):
    page.goto(host_pages.origin + "/")
    frame = page.frame_locator("#kilde-embed iframe")
    expect(frame.locator(".kilde-widget-question textarea")).to_be_visible()
    assert page.locator("#kilde-embed iframe").get_attribute("height") == "720"
    ask(frame, DEMO_QUESTION_EN, prefix="kilde-widget")
    answer = last_answer(frame)
    expect(answer).to_contain_text("[1]")
    expect(frame.locator(".kilde-widget-sources-panel mark.kilde-quote").first).to_contain_text(
        ARTICLE4_OPENING
    )

    answer.locator("button.kilde-cite[data-n='1']").click()
    highlight = frame.locator(".kilde-widget-article mark.kilde-quote")
    expect(highlight).to_contain_text(ARTICLE4_OPENING)
    expect(highlight).to_be_in_viewport()
    # Only the article panel scrolled: not the widget's page, not the host page; the question box stays.
    expect(frame.locator(".kilde-widget-question textarea")).to_be_in_viewport(ratio=1)
    assert widget_frame(page).evaluate("window.scrollY") == 0
    assert page.evaluate("window.scrollY") == 0
    # The cited passage and the full article are told apart by their headings.
    expect(frame.locator(".kilde-widget-sources-panel .kilde-panel-heading")).to_have_text("Cited passages")
    expect(frame.locator(".kilde-widget-article .kilde-panel-heading")).to_have_text("Full article")
    new_chat = frame.locator(".kilde-widget-new")
    assert new_chat.evaluate(TEXT_LINES) == 1
    assert frame.locator(".kilde-widget-feedback-row .kilde-widget-new").count() == 0
    screenshot(page, "widget", docs=True)


def test_an_iframe_on_an_origin_not_on_the_list_says_which_setting_to_change(
    page, foreign_pages, kilde_server
):
    page.goto(foreign_pages.origin + "/")
    frame = page.frame_locator("#kilde-embed iframe")
    notice = frame.get_by_role("alert")
    expect(notice).to_contain_text("KILDE_ALLOWED_ORIGINS")
    expect(notice).to_contain_text(foreign_pages.origin)
    expect(frame.locator("textarea")).to_have_count(0)
    # The app itself still carries frame-ancestors without that origin.
    csp = httpx.get(kilde_server.url + "/widget/").headers["content-security-policy"]
    assert foreign_pages.origin not in csp


def test_without_a_referer_chromium_still_blocks_the_frame(page, foreign_pages, kilde_server):
    """A page that hides where it is (no Referer) is sent the real page, and frame-ancestors blocks it."""
    asked = []
    page.on("request", lambda r: asked.append(r) if r.url.startswith(kilde_server.url + "/widget/") else None)
    host = foreign_pages.origin + "/no-referrer"
    page.route(
        host,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<iframe referrerpolicy="no-referrer" src="{kilde_server.url}/widget/" height="720"></iframe>',
        ),
    )
    page.goto(host)
    page.wait_for_load_state("load")
    page.wait_for_timeout(2000)
    assert asked and "referer" not in asked[0].headers
    # What such a request gets: the app, under a frame-ancestors that does not name this site.
    sent = httpx.get(kilde_server.url + "/widget/", headers={"Sec-Fetch-Dest": "iframe"})
    assert sent.status_code == 200 and "Kilde cannot be shown" not in sent.text
    csp = sent.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in csp and foreign_pages.origin not in csp
    expect(page.frame_locator("iframe").locator("textarea")).to_have_count(0)
    assert any(f.url.startswith("chrome-error://") for f in page.frames), [f.url for f in page.frames]


def test_gradio_app_on_an_origin_not_on_the_list_says_which_setting_to_change(page, foreign_pages):
    page.goto(foreign_pages.origin + "/web-component")
    notice = page.locator("gradio-app [role=alert]")
    expect(notice).to_contain_text("KILDE_ALLOWED_ORIGINS")
    expect(notice).to_contain_text(foreign_pages.origin)
    expect(page.locator("gradio-app textarea")).to_have_count(0)


def test_a_page_from_another_origin_posting_to_kilde_gets_a_readable_refusal(
    page, foreign_pages, kilde_server
):
    host = foreign_pages.origin + "/form"
    page.route(
        host,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<form method="post" action="{kilde_server.url}/api/ask">'
            '<input name="question" value="Hva?"><button>Send</button></form>',
        ),
    )
    page.goto(host)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Send").click()
    assert navigation.value.status == 403
    expect(page.locator("body")).to_contain_text("KILDE_ALLOWED_ORIGINS")
    expect(page.locator("body")).to_contain_text(f"Origin {foreign_pages.origin} is not allowed")


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
    page.add_init_script(FIRST_TEXTS)
    page.goto(host_pages.origin + "/web-component")
    box = page.locator("gradio-app .kilde-widget-question textarea")
    expect(box).to_be_visible()
    # Its config comes in the browser's language (en-GB) from the start.
    assert first_texts(page, "askw")["askw"] == "Ask"
    ask(page, DEMO_QUESTION_EN, prefix="kilde-widget")
    expect(last_answer(page)).to_contain_text("[1]")


def test_the_page_says_the_language_it_is_in_and_follows_the_switch(browser, kilde_server, host_pages):
    """`<html lang>` was the browser's locale (Gradio's), whatever language the page was served in, and stayed
    so after the switch: a screen reader read an English page with a Norwegian voice, or the reverse."""
    context = browser.new_context(locale="nb-NO")
    try:
        page = context.new_page()
        page.goto(kilde_server.url + "/widget/?lang=en")
        expect(page.locator(".kilde-widget-ask")).to_have_text("Ask")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.get_by_label("Norsk").check()
        expect(page.locator(".kilde-widget-ask")).to_have_text("Spør")
        expect(page.locator("html")).to_have_attribute("lang", "nb")

        # In a host page, `<gradio-app>` says the widget's language; the host page's `<html>` is not Kilde's.
        page.goto(host_pages.origin + "/web-component")
        expect(page.locator("gradio-app .kilde-widget-ask")).to_be_visible()
        expect(page.locator("gradio-app")).to_have_attribute("lang", "nb")
        page.locator("gradio-app").get_by_label("English").check()
        expect(page.locator("gradio-app .kilde-widget-ask")).to_have_text("Ask")
        expect(page.locator("gradio-app")).to_have_attribute("lang", "en")
    finally:
        context.close()


# The sample host page without its `lang`, as the parser inserts `<html>` (before any script of the page runs).
WITHOUT_LANG = """new MutationObserver((_, observer) => {
  if (!document.documentElement) return;
  document.documentElement.removeAttribute('lang');
  observer.disconnect();
}).observe(document, {childList: true});"""


@pytest.mark.parametrize("host_lang", ["nb", None])
def test_the_widget_leaves_the_host_pages_language_as_the_host_set_it(page, host_pages, host_lang):
    """Gradio's i18n set the host page's `<html lang>` to the browser's locale (a page in `nb`, in this English
    browser, became `en`; a page without `lang` got one): a widget must not change its host's language."""
    if host_lang is None:
        page.add_init_script(WITHOUT_LANG)
    page.goto(host_pages.origin + "/web-component")
    widget = page.locator("gradio-app")
    expect(widget.locator(".kilde-widget-ask")).to_have_text("Ask")
    expect(widget).to_have_attribute("lang", "en")  # the widget's language, said on its own element
    assert page.evaluate("document.documentElement.getAttribute('lang')") == host_lang
    widget.get_by_label("Norsk").check()
    expect(widget).to_have_attribute("lang", "nb")
    assert page.evaluate("document.documentElement.getAttribute('lang')") == host_lang
    # The host's own change of language stands.
    page.evaluate("document.documentElement.lang = 'nn'")
    widget.get_by_label("English").check()
    expect(widget).to_have_attribute("lang", "en")
    assert page.evaluate("document.documentElement.lang") == "nn"


def test_two_widgets_on_one_page_each_say_their_own_language(page, host_pages, kilde_server):
    """With a second `<gradio-app>` on the page, the second widget's language was never said, and its switch set
    the first widget's `lang` (the page-language script found the first widget's radio by its id)."""
    page.goto(host_pages.origin + "/web-component")
    expect(page.locator("gradio-app .kilde-widget-ask")).to_have_text("Ask")
    page.evaluate(
        """(src) => document.querySelector('#kilde-embed').insertAdjacentHTML(
             'beforeend', `<gradio-app src="${src}" eager="true"></gradio-app>`)""",
        kilde_server.url + "/widget/",
    )
    first, second = page.locator("gradio-app").nth(0), page.locator("gradio-app").nth(1)
    expect(second.locator(".kilde-widget-ask")).to_have_text("Ask")
    expect(second).to_have_attribute("lang", "en")
    second.get_by_label("Norsk").check()
    expect(second.locator(".kilde-widget-ask")).to_have_text("Spør")
    expect(second).to_have_attribute("lang", "nb")
    expect(second.get_by_role("radiogroup")).to_have_accessible_name("Språk i grensesnittet")
    expect(first).to_have_attribute("lang", "en")
    expect(first.get_by_role("radiogroup")).to_have_accessible_name("Interface language")
    assert page.evaluate("document.documentElement.lang") == "nb"  # the host's


# The sample host page as a right-to-left page (an Arabic or Hebrew intranet), set as the parser inserts `<html>`.
RIGHT_TO_LEFT = """new MutationObserver((_, observer) => {
  if (!document.documentElement) return;
  document.documentElement.setAttribute('dir', 'rtl');
  observer.disconnect();
}).observe(document, {childList: true});"""


def test_in_a_right_to_left_host_page_the_widget_keeps_its_left_to_right_layout(page, host_pages):
    """The widget inherited the host's `dir="rtl"`: its rows were mirrored (Ask left of the question box, the
    name at the right end), while all its languages are written left to right."""
    page.add_init_script(RIGHT_TO_LEFT)
    page.goto(host_pages.origin + "/web-component")
    widget = page.locator("gradio-app")
    expect(widget.locator(".kilde-widget-ask")).to_be_visible()
    assert page.evaluate("document.documentElement.dir") == "rtl"  # the host's, untouched
    question = widget.locator(".kilde-widget-question textarea").bounding_box()
    ask_button = widget.locator(".kilde-widget-ask").bounding_box()
    assert question["x"] < ask_button["x"], (question, ask_button)
    header = widget.locator(part(WIDGET, "header")).bounding_box()
    switch = widget.locator(".kilde-widget-language").bounding_box()
    assert header["x"] < switch["x"], (header, switch)


# A Content-Security-Policy as strict intranet pages set it (in a <meta> here; a header acts the same): scripts
# from the page and Kilde's server, but no `eval`, which Gradio's HTML components need.
STRICT_CSP = """new MutationObserver((_, observer) => {
  if (!document.head) return;
  const meta = document.createElement('meta');
  meta.httpEquiv = 'Content-Security-Policy';
  meta.content = "script-src 'self' KILDE; style-src 'self' 'unsafe-inline' KILDE";
  document.head.prepend(meta);
  observer.disconnect();
}).observe(document, {childList: true, subtree: true});"""


def test_a_host_page_whose_csp_stops_the_widget_says_so_in_its_place(page, host_pages, kilde_server):
    """Under a policy without 'unsafe-eval' the `<gradio-app>` embed showed "Loading..." for ever."""
    page.add_init_script(STRICT_CSP.replace("KILDE", kilde_server.url))
    page.goto(host_pages.origin + "/web-component")
    notice = page.locator("gradio-app [role=alert]")
    expect(notice).to_contain_text("Content-Security-Policy")
    expect(notice).to_contain_text("'unsafe-eval'")
    expect(notice).to_contain_text("<iframe>")
    expect(page.locator("gradio-app").get_by_text("Loading...")).to_have_count(0)


def test_a_widget_280_pixels_wide_shows_its_whole_top_row(page, host_pages):
    """At 280 px the top row did not fit: "New conversation" was cut off at the widget's edge and the name
    squeezed to nothing; the question box's hint wrapped, its first line cut off."""
    page.goto(host_pages.origin + "/web-component")
    page.add_style_tag(
        content="main { display: block; } #kilde-embed { width: 280px; box-sizing: border-box; }"
    )
    widget = page.locator("gradio-app")
    expect(widget.locator(".kilde-widget-new")).to_be_visible()
    edge = widget.bounding_box()
    assert edge["width"] <= 280
    for selector in (".kilde-widget-header strong", ".kilde-widget-language", ".kilde-widget-new"):
        box = widget.locator(selector).bounding_box()
        assert (
            box["width"] > 0
            and edge["x"] <= box["x"]
            and box["x"] + box["width"] <= edge["x"] + edge["width"]
        ), (
            selector,
            box,
            edge,
        )
    assert widget.locator(".kilde-widget-new").evaluate("el => el.scrollWidth <= el.clientWidth")
    name, header = (
        widget.locator(selector).bounding_box()
        for selector in (".kilde-widget-header strong", part(WIDGET, "header"))
    )
    assert name["x"] + name["width"] <= header["x"] + header["width"], (name, header)  # the whole name shows
    # The empty question box's hint is on its one line, not wrapped with its first line scrolled out of view
    # (a few pixels of the box's padding aside).
    hint = widget.locator(".kilde-widget-question textarea")
    assert hint.evaluate("el => el.value === '' && el.scrollHeight <= el.clientHeight + 4"), hint.evaluate(
        "el => [el.scrollHeight, el.clientHeight]"
    )


# Every id in each root of the page (the document and any shadow root) that more than one element carries, and
# every label or ARIA reference inside a `<gradio-app>` that names no element of that same widget.
ID_CLASHES = """() => {
  const roots = [document];
  for (let i = 0; i < roots.length; i++) {
    for (const el of roots[i].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
  }
  const repeated = [];
  for (const root of roots) {
    const seen = new Map();
    // Gradio gives some wrappers `id=""`, which names nothing (getElementById('') finds none).
    for (const el of root.querySelectorAll('[id]:not([id=""])')) seen.set(el.id, (seen.get(el.id) || 0) + 1);
    for (const [id, n] of seen) if (n > 1) repeated.push(`${id} x${n}`);
  }
  const refs = ['for', 'aria-labelledby', 'aria-describedby', 'aria-controls', 'aria-owns', 'aria-details',
                'aria-activedescendant', 'aria-errormessage', 'aria-flowto'];
  const astray = [];
  for (const app of document.querySelectorAll('gradio-app')) {
    for (const el of app.querySelectorAll(refs.map((name) => `[${name}]`).join(','))) {
      for (const name of refs) {
        for (const id of (el.getAttribute(name) || '').split(/\\s+/).filter(Boolean)) {
          const target = el.getRootNode().getElementById(id);
          if (!target || !app.contains(target)) astray.push(`${el.tagName} ${name}=${id}`);
        }
      }
    }
  }
  return {repeated, astray, apps: document.querySelectorAll('gradio-app').length};
}"""


def test_two_widgets_on_one_page_repeat_no_id_and_each_answers(page, host_pages, kilde_server):
    """Two `<gradio-app>` widgets repeated every element id: a host's script or style, or a label or ARIA
    reference, that names an id reached the first widget only."""
    page.goto(host_pages.origin + "/web-component")
    page.evaluate(
        """(src) => document.querySelector('#kilde-embed').insertAdjacentHTML(
             'beforeend', `<gradio-app src="${src}" eager="true"></gradio-app>`)""",
        kilde_server.url + "/widget/",
    )
    widgets = page.locator("gradio-app")
    for widget in (widgets.nth(0), widgets.nth(1)):
        expect(widget.locator("textarea")).to_be_visible()
    clashes = page.evaluate(ID_CLASHES)
    assert clashes["apps"] == 2
    assert clashes["repeated"] == [], clashes["repeated"]
    assert clashes["astray"] == [], clashes["astray"]
    for widget in (widgets.nth(1), widgets.nth(0)):
        widget.locator("textarea").fill(DEMO_QUESTION_EN)
        widget.locator("textarea").press("Enter")
        answer = widget.locator(ANSWERED).first
        expect(answer).to_contain_text("[1]")
        answer.locator("button.kilde-cite[data-n='1']").click()
        expect(widget.locator(".kilde-widget-article mark.kilde-quote")).to_contain_text(ARTICLE4_OPENING)
    clashes = page.evaluate(ID_CLASHES)  # the answers, sources and articles each widget now shows
    assert clashes["repeated"] == [], clashes["repeated"]
    assert clashes["astray"] == [], clashes["astray"]


# Every Content-Security-Policy refusal the page meets, recorded from its first script on.
RECORD_VIOLATIONS = """window.__refused = [];
document.addEventListener('securitypolicyviolation', (event) => window.__refused.push(event.blockedURI));"""


def test_a_host_page_whose_csp_refuses_kildes_script_says_why_in_the_widgets_place(
    page, host_pages, kilde_server
):
    """A policy whose `script-src` leaves out Kilde's server refuses `/gradio.js` itself: nothing of Kilde's ran, and
    the place of the widget stayed empty without a word."""
    page.add_init_script(RECORD_VIOLATIONS)
    page.add_init_script(STRICT_CSP.replace("KILDE", ""))
    page.goto(host_pages.origin + "/web-component")
    page.wait_for_function("() => window.__refused.some((url) => url.endsWith('/gradio.js'))")
    page.wait_for_load_state("load")
    fallback = page.locator("gradio-app .kilde-fallback")
    expect(fallback).to_be_visible()
    expect(fallback).to_contain_text(
        "Content-Security-Policy"
    )  # the sample page is Norwegian: its text is too
    expect(fallback).to_contain_text(f"skript fra {kilde_server.url} (script-src)")
    expect(fallback).to_contain_text(f"frame-src {kilde_server.url}")


# The sample host page declaring a colour scheme, and its `<gradio-app>` naming one, set as the parser builds them
# (before any script of the page runs). A page served through `page.route` would do, but Chromium counts such a page
# as public and refuses it Kilde's loopback server.
HOST_DECLARES = """new MutationObserver((_, observer) => {
  if (!document.head) return;
  const meta = document.createElement('meta');
  meta.name = 'color-scheme';
  meta.content = 'SCHEME';
  document.head.prepend(meta);
  observer.disconnect();
}).observe(document, {childList: true, subtree: true});"""
SNIPPET_SAYS = """new MutationObserver((_, observer) => {
  const app = document.querySelector('gradio-app');
  if (!app) return;
  app.setAttribute('theme_mode', 'SCHEME');
  observer.disconnect();
}).observe(document, {childList: true, subtree: true});"""


# The mean of a colour's red, green and blue: below 128 is a dark widget, above a light one.
BRIGHTNESS = """(el) => {
  const [r, g, b] = getComputedStyle(el).backgroundColor.match(/\\d+/g).map(Number);
  return (r + g + b) / 3;
}"""


@pytest.mark.parametrize(
    "browser_scheme, host_declares, snippet_says, expected",
    [
        ("dark", None, None, "light"),  # a light page (it declares nothing) in a dark browser
        ("dark", "light dark", None, "dark"),  # a page that follows the browser
        ("light", "dark", None, "dark"),  # a dark page in a light browser
        ("dark", "dark", "light", "light"),  # the snippet's own choice (`theme_mode`) stands
    ],
)
def test_the_web_component_takes_the_host_pages_colour_scheme(
    browser, host_pages, browser_scheme, host_declares, snippet_says, expected
):
    """Gradio follows the browser's colour scheme: in a dark browser the widget was dark inside a light page."""
    context = browser.new_context(locale="en-GB", color_scheme=browser_scheme)
    try:
        page = context.new_page()
        if host_declares:
            page.add_init_script(HOST_DECLARES.replace("SCHEME", host_declares))
        if snippet_says:
            page.add_init_script(SNIPPET_SAYS.replace("SCHEME", snippet_says))
        page.goto(host_pages.origin + "/web-component")
        box = page.locator("gradio-app .kilde-widget-question textarea")
        expect(box).to_be_visible()
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
            browser_scheme == "dark"
        )
        brightness = box.evaluate(BRIGHTNESS)
        assert (brightness > 128) == (expected == "light"), brightness
        expect(page.locator("gradio-app .kilde-fallback")).to_have_count(0)
    finally:
        context.close()


def test_the_iframe_snippet_shows_a_light_widget_in_a_dark_browser(browser, host_pages):
    """The frame cannot see the page around it, and followed the browser: dark inside a light intranet page. The
    snippet names its scheme (light unless the host asks for dark or the browser's)."""
    context = browser.new_context(locale="en-GB", color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(host_pages.origin + "/")
        box = page.frame_locator("#kilde-embed iframe").locator(".kilde-widget-question textarea")
        expect(box).to_be_visible()
        assert box.evaluate(BRIGHTNESS) > 128
    finally:
        context.close()


# How a host page switches its colour scheme while the widget is open: the page as loaded (set as the parser builds
# it, before any script of the page runs), then the switch to dark and the switch back.
SWITCHES = {
    "a class on its root": (
        None,
        "() => { const s = document.createElement('style'); s.textContent = ':root.night { color-scheme: dark }';"
        " document.head.append(s); document.documentElement.classList.add('night'); }",
        "() => document.documentElement.classList.remove('night')",
    ),
    "its meta": (
        "light",
        "() => { document.querySelector('meta[name=color-scheme]').content = 'dark'; }",
        "() => { document.querySelector('meta[name=color-scheme]').content = 'light'; }",
    ),
}
WIDGET_BOX = "gradio-app .kilde-widget-question textarea"


def wait_for_scheme(page, scheme: str) -> None:
    """Until the widget's question box is as bright as `scheme` says (a light box above 128, a dark one below)."""
    page.wait_for_function(
        f"(dark) => (({BRIGHTNESS})(document.querySelector({WIDGET_BOX!r})) < 128) === dark",
        arg=scheme == "dark",
    )


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_the_web_component_follows_the_host_page_switching_its_scheme(browser, host_pages, switch):
    """The host page's scheme was read once, as the widget arrived: a page switched to dark (a class on its root,
    its `<meta name="color-scheme">` changed) kept a light widget. It follows now, its conversation kept."""
    declared, to_dark, to_light = SWITCHES[switch]
    context = browser.new_context(locale="en-GB", color_scheme="light")
    try:
        page = context.new_page()
        if declared:
            page.add_init_script(HOST_DECLARES.replace("SCHEME", declared))
        page.goto(host_pages.origin + "/web-component")
        expect(page.locator(WIDGET_BOX)).to_be_visible()
        ask(page, DEMO_QUESTION_EN, prefix=WIDGET)
        wait_for_scheme(page, "light")
        page.evaluate(to_dark)
        wait_for_scheme(page, "dark")
        page.evaluate(to_light)
        wait_for_scheme(page, "light")
        expect(last_answer(page)).to_contain_text(ARTICLE4_OPENING)  # the same conversation, not a new widget
    finally:
        context.close()


# A host page whose own stylesheet follows the browser: dark only while the browser is.
FOLLOWS_THE_BROWSER = """new MutationObserver((_, observer) => {
  if (!document.head) return;
  const style = document.createElement('style');
  style.textContent = '@media (prefers-color-scheme: dark) { :root { color-scheme: dark } }';
  document.head.prepend(style);
  observer.disconnect();
}).observe(document, {childList: true, subtree: true});"""


@pytest.mark.parametrize("page_says", ["light dark", "a media query"])
def test_the_web_component_follows_the_browser_switching_its_scheme_under_a_page_that_does(
    browser, host_pages, page_says
):
    """A host page dark only while the browser is (its stylesheet's `prefers-color-scheme` query) kept the widget
    as it was when it arrived: the browser switched to dark under a light widget. `light dark` was followed by
    Gradio's own `system` mode, and still is."""
    context = browser.new_context(locale="en-GB", color_scheme="light")
    try:
        page = context.new_page()
        if page_says == "light dark":
            page.add_init_script(HOST_DECLARES.replace("SCHEME", "light dark"))
        else:
            page.add_init_script(FOLLOWS_THE_BROWSER)
        page.goto(host_pages.origin + "/web-component")
        expect(page.locator(WIDGET_BOX)).to_be_visible()
        ask(page, DEMO_QUESTION_EN, prefix=WIDGET)
        wait_for_scheme(page, "light")
        page.emulate_media(color_scheme="dark")
        wait_for_scheme(page, "dark")
        page.emulate_media(color_scheme="light")
        wait_for_scheme(page, "light")
        expect(last_answer(page)).to_contain_text(ARTICLE4_OPENING)
    finally:
        context.close()


def test_the_widgets_question_box_takes_its_direction_from_what_is_typed(page, host_pages, kilde_server):
    """In the web component and on the widget's own page (the `<iframe>`), as in the chat: the box was `dir="ltr"`."""
    arabic = "ما الذي تلزم به المادة 4 كل طرف؟"
    for url, box in [
        (host_pages.origin + "/web-component", page.locator(WIDGET_BOX)),
        (kilde_server.url + "/widget/", page.locator(".kilde-widget-question textarea")),
    ]:
        page.goto(url)
        box.fill(arabic)
        expect(box).to_have_attribute("dir", "auto")
        assert box.evaluate("(el) => getComputedStyle(el).direction") == "rtl"
        ask(page, arabic, prefix=WIDGET)
        box.fill(arabic)
        assert box.evaluate("(el) => getComputedStyle(el).direction") == "rtl"


TELL_THE_FRAME = """(scheme) => document.querySelector('#kilde-embed iframe').contentWindow.postMessage(
  {kilde: 'color-scheme', scheme}, '*')"""


def test_a_host_page_tells_the_iframe_widget_its_new_scheme_and_the_conversation_stays(browser, host_pages):
    """The frame cannot see the page around it, and its URL's scheme was all it had: a host page switched to dark
    could only load the frame again, with another `?__theme`, which starts a new conversation. It tells the frame
    now, with a message."""
    context = browser.new_context(locale="en-GB", color_scheme="light")
    try:
        page = context.new_page()
        page.goto(host_pages.origin + "/")
        frame = page.frame_locator("#kilde-embed iframe")
        box = frame.locator(".kilde-widget-question textarea")
        expect(box).to_be_visible()
        ask(frame, DEMO_QUESTION_EN, prefix=WIDGET)
        frame_page = widget_frame(page)
        bright = f"(dark) => (({BRIGHTNESS})(document.querySelector('.kilde-widget-question textarea')) < 128) === dark"
        page.evaluate(TELL_THE_FRAME, "dark")
        frame_page.wait_for_function(bright, arg=True)
        page.evaluate(TELL_THE_FRAME, "light")
        frame_page.wait_for_function(bright, arg=False)
        expect(last_answer(frame)).to_contain_text(ARTICLE4_OPENING)
    finally:
        context.close()
