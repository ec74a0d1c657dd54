"""Round twenty-six in Chromium: the chat highlights exactly the quoted characters, and a JavaScript client that
slices the article text as README.md says lands on the quote (tests/citation_offsets.py)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from assistant.testing.corpus import ROOT
from assistant.testing.servers import ThreadServer
from tests.browser.chat import ask, last_answer, open_chat
from tests.citation_offsets import CASES, build_offsets_index

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def offsets_app(tmp_path_factory, tiktoken_cache, embedder):
    from assistant.build import build_assistant
    from ui.server import create_app

    settings = build_offsets_index(tmp_path_factory.mktemp("offsets"), tiktoken_cache, embedder)
    settings = settings.replace(rate_limit_per_minute=1000)
    server = ThreadServer(create_app(settings, build_assistant(settings, embedder=embedder))).start()
    yield server
    server.stop()


def documented_slice() -> str:
    """The JavaScript expression README.md gives for slicing an article text at a citation's offsets."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"slice by code points instead,\s+`([^`]+)`", readme)
    assert found, "README.md gives no JavaScript expression that slices at the offsets"
    return found.group(1)


def test_a_javascript_client_slicing_as_documented_gets_each_quote(page, offsets_app):
    open_chat(page, offsets_app.url)
    results = page.evaluate(
        """async ([questions, slice]) => {
          const sliceAt = new Function("text", "start", "end", "return " + slice);
          const out = [];
          for (const question of questions) {
            const answer = await (await fetch("/api/ask", {method: "POST", headers: {"Content-Type":
              "application/json"}, body: JSON.stringify({question})})).json();
            for (const c of answer.citations) {
              const text = (await (await fetch("/api/articles/" + encodeURIComponent(c.article_id))).json()).text;
              out.push({id: c.article_id, quote: c.quote, documented: sliceAt(text, c.start, c.end),
                        units: text.slice(c.start, c.end)});
            }
          }
          return out;
        }""",
        [[q for _, _, q in CASES.values()], documented_slice()],
    )
    assert {r["id"] for r in results} >= set(CASES)
    for r in results:
        assert r["documented"] == r["quote"], r
    # What the docs warn of: UTF-16 units miss the quote once a character outside the BMP precedes it.
    assert any(r["units"] != r["quote"] for r in results if r["id"] == "emoji")


@pytest.mark.parametrize("name", ["emoji", "nfd", "zero-width", "soft-hyphen", "chunk-boundary"])
def test_the_chat_highlights_exactly_the_quote(page, offsets_app, name):
    question = CASES[name][2]
    (citation,) = [
        c
        for c in httpx.post(f"{offsets_app.url}/api/ask", json={"question": question}, timeout=120).json()[
            "citations"
        ]
        if c["article_id"] == name
    ]
    open_chat(page, offsets_app.url)
    ask(page, question)
    last_answer(page).locator(f"button.kilde-cite[data-n='{citation['n']}']").click()
    highlight = page.locator("#kilde-article #kilde-hl")
    expect(highlight).to_be_visible()
    assert highlight.text_content() == citation["quote"]
