"""Page helpers for driving the chat and the widget (same markup, different element-id prefixes)."""

from __future__ import annotations

ANSWERED = ".kilde-bot.kilde-answered, .kilde-bot.kilde-notfound"
WIDGET = "kilde-widget"


def part(prefix: str, name: str) -> str:
    """The selector of one of the page's parts: the chat's have ids, the widget's classes (a host page may hold
    two widgets, and an id names one element of the page). Gradio puts an HTML part's class on its block and on
    the block's content too: the part is the outer one."""
    if prefix != WIDGET:
        return f"#{prefix}-{name}"
    return f".{prefix}-{name}:not(.{prefix}-{name} *)"


# Only Kilde's own markup may appear inside the panels that show archive text.
OUR_TAGS = {
    "DIV",
    "P",
    "SPAN",
    "BUTTON",
    "MARK",
    "OL",
    "LI",
    "BLOCKQUOTE",
    "ARTICLE",
    "H2",
    "H3",
    "Q",
    "STRONG",
}
PANELS = "#kilde-conversation .kilde-conv, #kilde-sources-panel .kilde-sources, #kilde-article .kilde-article"

INSPECT = """(panels) => {
  const tags = new Set();
  for (const panel of document.querySelectorAll(panels)) {
    for (const el of panel.querySelectorAll('*')) tags.add(el.tagName);
  }
  const handlers = [];
  const urls = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.toLowerCase().startsWith('on')) handlers.push(el.tagName + ' ' + attr.name);
      const value = attr.value.trim().toLowerCase();
      if (['href', 'src', 'action', 'data', 'formaction', 'xlink:href'].includes(attr.name.toLowerCase())
          && (value.startsWith('javascript:') || value.startsWith('data:text/html') || value.includes('evil.example')))
        urls.push(el.tagName + ' ' + attr.name + '=' + attr.value);
    }
  }
  return {tags: [...tags], handlers, urls, title: document.title, pwned: typeof window.__pwned,
          base: [...document.querySelectorAll('base')].map(b => b.getAttribute('href'))};
}"""


# The first text each element showed, recorded from the first DOM node on (before Gradio's scripts run).
FIRST_TEXTS = """
window.__kildeFirst = {};
new MutationObserver(() => {
  const seen = {ask: '#kilde-ask', new: '#kilde-new', article: '#kilde-article .kilde-panel',
                question: '#kilde-question', askw: '.kilde-widget-ask'};
  for (const [name, selector] of Object.entries(seen)) {
    const el = document.querySelector(selector);
    if (el && !(name in window.__kildeFirst) && el.textContent.trim()) window.__kildeFirst[name] = el.textContent.trim();
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def first_texts(page, *names: str) -> dict:
    """What FIRST_TEXTS recorded, once it holds each of `names`: the page's elements appear in no fixed order
    (the widget's question box can be shown before its Ask button), so waiting for one says nothing of another."""
    page.wait_for_function("(names) => names.every((name) => name in window.__kildeFirst)", arg=list(names))
    return page.evaluate("window.__kildeFirst")


# How many lines the element's text takes (distinct line boxes).
TEXT_LINES = """(el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
}"""


def open_chat(target, url: str):
    """Load the chat at `url` and wait until it is interactive (works for a page or a frame)."""
    target.goto(url)
    target.wait_for_selector("textarea", state="visible")


def ask(scope, question: str, prefix: str = "kilde") -> None:
    """Type a question, press Enter, and wait for the finished answer (scope: a page or a frame)."""
    before = scope.locator(ANSWERED).count()
    box = scope.locator(f"{part(prefix, 'question')} textarea")
    box.fill(question)
    box.press("Enter")
    scope.locator(ANSWERED).nth(before).wait_for(state="visible")


def last_answer(scope):
    return scope.locator(ANSWERED).last


# Two animation frames: the framework's pending updates of freshly mounted components have run.
SETTLED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"


def open_filters(page, prefix: str = "kilde") -> None:
    """Open the Filters accordion and wait until its fields are mounted and settled.

    The accordion mounts its fields on first open; a value typed in the same instant can be overwritten
    by the field's initial (empty) value, so the fields must settle first."""
    page.get_by_text("Filters").click()
    page.locator(f"#{prefix}-languages").wait_for(state="visible")
    page.wait_for_function(SETTLED)


def fill_filter(page, field: str, value: str, prefix: str = "kilde") -> None:
    """Type `value` into the filter text field `field` (since/until) and wait until the page holds it."""
    box = page.locator(f"#{prefix}-{field} input, #{prefix}-{field} textarea").first
    box.fill(value)
    page.wait_for_function(SETTLED)
    if box.input_value() != value:
        raise AssertionError(f"the {field} filter did not keep {value!r}: it shows {box.input_value()!r}")
