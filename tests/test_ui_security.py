"""Unit tests of the HTTP edge (ui/security.py) on a tiny app, and of the escaping in ui/render.py."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from assistant.core.config import Settings
from assistant.core.types import Answer, Article, Citation
from ui import render
from ui.i18n import from_accept_language, normalise_language, t
from ui.limits import RateLimiter
from ui.network import address_in
from ui.security import CLIENT_KEY, Gate


def echo(request):
    return JSONResponse({"client": request.scope["state"].get(CLIENT_KEY)})


def gated(**settings) -> Starlette:
    app = Starlette(routes=[Route("/x", echo, methods=["GET", "POST"]), Route("/healthz", echo)])
    app.add_middleware(Gate, settings=Settings(**settings))
    return app


def test_rate_limiter_allows_the_limit_per_minute_then_names_the_wait():
    now = [1000.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.check("a") for _ in range(3)] == [None, None, None]
    assert limiter.check("a") == 61
    assert limiter.check("b") is None  # per client
    now[0] += 30
    assert 1 <= limiter.check("a") <= 31
    now[0] += 31
    assert limiter.check("a") is None


def test_origin_check_allows_same_origin_and_listed_origins_only():
    client = TestClient(gated(allowed_origins=("https://intranet.example.org",)), client=("127.0.0.1", 1))
    assert client.get("/x", headers={"Origin": "http://testserver"}).status_code == 200
    assert client.get("/x", headers={"Origin": "https://intranet.example.org"}).status_code == 200
    refused = client.post("/x", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "KILDE_ALLOWED_ORIGINS" in refused.json()["message"]


def test_csp_frame_ancestors_follow_the_allowed_origins():
    listed = TestClient(
        gated(allowed_origins=("https://a.example", "https://b.example")), client=("127.0.0.1", 1)
    ).get("/x")
    assert (
        "frame-ancestors 'self' https://a.example https://b.example;"
        in listed.headers["content-security-policy"]
    )
    assert "x-frame-options" not in listed.headers
    alone = TestClient(gated(), client=("127.0.0.1", 1)).get("/x")
    assert "frame-ancestors 'self';" in alone.headers["content-security-policy"]
    assert alone.headers["x-frame-options"] == "SAMEORIGIN"


def test_auth_none_is_loopback_only():
    assert TestClient(gated(), client=("127.0.0.1", 1)).get("/x").json() == {"client": "ip:127.0.0.1"}
    assert TestClient(gated(), client=("10.1.1.1", 1)).get("/x").status_code == 403
    assert TestClient(gated(), client=("10.1.1.1", 1)).get("/healthz").status_code == 200


def test_proxy_mode_takes_the_user_only_from_trusted_proxies():
    app = gated(auth_mode="proxy", trusted_proxies=("10.0.0.0/24",), proxy_user_header="X-Remote-User")
    proxy = TestClient(app, client=("10.0.0.9", 1))
    assert proxy.get("/x", headers={"X-Remote-User": "ola"}).json() == {"client": "user:ola"}
    assert proxy.get("/x").status_code == 401
    assert (
        TestClient(app, client=("10.0.1.9", 1)).get("/x", headers={"X-Remote-User": "ola"}).status_code == 403
    )


def test_session_mode_issues_cookie_on_get_and_requires_it_for_post():
    app = gated(auth_mode="session")
    browser = TestClient(app, client=("10.2.2.2", 1))
    assert browser.post("/x").status_code == 401
    first = browser.get("/x")
    assert "HttpOnly" in first.headers["set-cookie"]
    key = first.json()["client"]
    assert key.startswith("session:")
    again = browser.post("/x")
    assert again.status_code == 200 and again.json()["client"] == key and "set-cookie" not in again.headers
    other = TestClient(app, client=("10.2.2.2", 1))
    assert other.get("/x").json()["client"] != key


def test_address_in_accepts_addresses_and_networks():
    assert address_in("10.0.0.5", ("10.0.0.5",))
    assert address_in("10.0.0.5", ("10.0.0.0/8",))
    assert not address_in("192.168.1.1", ("10.0.0.0/8", "not-an-ip"))
    assert not address_in(None, ("10.0.0.0/8",))


def test_interface_language_choice():
    assert from_accept_language("nb-NO,nb;q=0.9,en;q=0.8") == "nb"
    assert from_accept_language("en-GB,en;q=0.9") == "en"
    assert from_accept_language("de-DE") == "nb"
    assert normalise_language("nn") == "nb" and normalise_language("EN") == "en"
    assert t("en", "rate_limited", limit=3, seconds=20).startswith("Too many questions")
    assert t("nb", "not_found_title") == "Ikke i arkivet"


# -- rendering: archive text is always text -----------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[klikk](javascript:alert(1))",
    '"><svg onload=alert(1)>',
    "${alert(1)}",
    "{{constructor.constructor('alert(1)')()}}",
]
OUR_TAGS = {"div", "span", "button", "mark", "ol", "li", "blockquote", "article", "h2", "h3", "q"}
OUR_TAGS |= {"p", "strong"}
OUR_ATTRS = {
    "class",
    "id",
    "data-turn",
    "data-n",
    "data-article-id",
    "title",
    "type",
    # the live region (render.live_region_html): fixed values, never article text
    "role",
    "aria-live",
    "aria-atomic",
    # a question's or answer's text takes its direction from its own letters: the fixed value "auto"
    "dir",
}


class Elements(HTMLParser):
    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str]] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(name, value or "") for name, value in attrs]


def answer_with(text: str, quote: str, article_text: str) -> tuple[Answer, Article]:
    start = article_text.index(quote)
    citation = Citation(
        n=1,
        article_id="a<b>",
        title=text,
        date="2024-01-01",
        source=text,
        url="javascript:x",
        chunk_id="c1",
        quote=quote,
        start=start,
        end=start + len(quote),
        score=1.0,
    )
    answer = Answer(
        question=text,
        answer=f"{text} [1] [7]",
        answerable=True,
        language="en",
        citations=(citation,),
        retrieved=(),
    )
    article = Article(
        id="a<b>",
        title=text,
        text=article_text,
        content_hash="h",
        language="en",
        url="javascript:alert(1)",
        source=text,
    )
    return answer, article


def all_html(text: str) -> list[str]:
    quote = f"Q {text} Q"
    answer, article = answer_with(text, quote, f"before {text} " + quote + f" after {text}")
    exchanges = [render.Exchange(text, answer), render.Exchange(text, partial=text)]
    return [
        render.conversation_html(exchanges, "en"),
        render.sources_html(answer, 0, "en", lambda _id: article),
        render.article_html(article, answer.citations[0], "en"),
    ]


def check_markup(markup: str) -> None:
    parsed = Elements(markup)
    assert parsed.tags <= OUR_TAGS, parsed.tags - OUR_TAGS
    assert {name for name, _ in parsed.attrs} <= OUR_ATTRS
    assert {value for name, value in parsed.attrs if name == "dir"} <= {"auto"}
    assert not any("javascript:" in value for name, value in parsed.attrs if name != "title")


@pytest.mark.parametrize("text", HOSTILE)
def test_rendered_html_holds_only_our_tags_and_attributes(text):
    for markup in all_html(text):
        check_markup(markup)
        assert "<script" not in markup and "<img" not in markup and "<svg" not in markup


@given(st.text(max_size=200))
def test_any_text_renders_escaped(text):
    for markup in all_html(text):
        check_markup(markup)


def test_markers_link_only_real_citations_and_the_quote_is_marked_at_its_offsets():
    answer, article = answer_with("Svaret", "Artikkel 4 sier", "Innledning. Artikkel 4 sier noe. Slutt.")
    conv = render.conversation_html([render.Exchange("Q", answer)], "en")
    assert conv.count('class="kilde-cite"') == 1 and 'data-n="1"' in conv and "[7]" in conv
    view = render.article_html(article, answer.citations[0], "en")
    assert '<mark class="kilde-quote" id="kilde-hl">Artikkel 4 sier</mark>' in view
    assert view.index("Innledning.") < view.index("kilde-hl")
