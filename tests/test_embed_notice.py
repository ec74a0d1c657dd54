"""The notices for sites that embed Kilde without being listed, and the page language: unit level. The
browser side is tests/browser/test_widget.py and tests/browser/test_layout.py."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from assistant.core.config import Settings
from ui.embed_notice import framing_origin, page_origin
from ui.page_language import localised, request_language
from ui.security import Gate

ALLOWED = "https://intranet.example.org"
FOREIGN = "https://elsewhere.example.org"


def app() -> TestClient:
    routes = [
        Route("/widget/", lambda request: PlainTextResponse("the app")),
        Route("/gradio.js", lambda request: PlainTextResponse("gradio loader")),
        Route("/api/ask", lambda request: JSONResponse({"ok": True}), methods=["POST"]),
    ]
    starlette = Starlette(routes=routes)
    starlette.add_middleware(Gate, settings=Settings(allowed_origins=(ALLOWED,)))
    return TestClient(starlette, client=("127.0.0.1", 1))


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://intranet.example.org/news/page?x=1", "https://intranet.example.org"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/a", "http://[::1]:8080"),
        ("javascript:alert(1)", None),
        ("http://exa mple.org:99999/", None),
        ("", None),
        (None, None),
    ],
)
def test_page_origin(url, origin):
    assert page_origin(url) == origin


def test_only_a_frame_request_names_its_framer():
    frame = {"sec-fetch-dest": "iframe", "referer": FOREIGN + "/page"}
    assert framing_origin("GET", frame) == FOREIGN
    assert framing_origin("GET", {**frame, "sec-fetch-dest": "document"}) is None
    assert framing_origin("POST", frame) is None
    assert framing_origin("GET", {"sec-fetch-dest": "iframe"}) is None


def test_a_frame_on_a_foreign_page_gets_the_static_notice_and_never_the_app():
    client = app()
    notice = client.get("/widget/", headers={"Sec-Fetch-Dest": "iframe", "Referer": FOREIGN + "/p"})
    assert notice.status_code == 403 and "the app" not in notice.text
    assert "KILDE_ALLOWED_ORIGINS" in notice.text and FOREIGN in notice.text
    csp = notice.headers["content-security-policy"]
    assert "frame-ancestors *" in csp and "default-src 'none'" in csp and "script" not in csp
    assert "x-frame-options" not in notice.headers
    # Allowed, own and unknown framers get the app, under the strict frame-ancestors.
    for referer in (ALLOWED + "/p", "http://testserver/", None):
        headers = {"Sec-Fetch-Dest": "iframe", **({"Referer": referer} if referer else {})}
        page = client.get("/widget/", headers=headers)
        assert page.text == "the app", referer
        assert f"frame-ancestors 'self' {ALLOWED};" in page.headers["content-security-policy"]


def test_a_hostile_referer_is_escaped_in_the_notice():
    hostile = 'https://evil.example/"><script>alert(1)</script>'
    notice = app().get("/widget/", headers={"Sec-Fetch-Dest": "iframe", "Referer": hostile})
    assert "<script>" not in notice.text and "https://evil.example" in notice.text


def test_gradio_js_for_a_foreign_origin_is_the_notice_script():
    client = app()
    foreign = client.get("/gradio.js", headers={"Origin": FOREIGN})
    assert foreign.status_code == 200 and "gradio loader" not in foreign.text
    assert "KILDE_ALLOWED_ORIGINS" in foreign.text and "customElements.define('gradio-app'" in foreign.text
    assert foreign.headers["access-control-allow-origin"] == FOREIGN
    assert client.get("/gradio.js", headers={"Origin": ALLOWED}).text == "gradio loader"
    assert client.get("/gradio.js").text == "gradio loader"


def test_refusals_are_pages_for_navigations_and_json_for_programs():
    client = app()
    navigation = client.post(
        "/api/ask", headers={"Origin": FOREIGN, "Sec-Fetch-Mode": "navigate"}, data={"question": "x"}
    )
    assert navigation.status_code == 403 and navigation.headers["content-type"].startswith("text/html")
    assert "KILDE_ALLOWED_ORIGINS" in navigation.text and FOREIGN in navigation.text
    program = client.post("/api/ask", headers={"Origin": FOREIGN}, json={"question": "x"})
    assert program.status_code == 403 and program.json()["error"] == "origin_not_allowed"


def test_request_language_prefers_the_address_then_the_browser():
    assert request_language(b"lang=en", "nb-NO,nb;q=0.9") == "en"
    assert request_language(b"", "en-GB,en;q=0.9") == "en"
    assert request_language(b"view=api", "nn-NO") == "nb"
    assert request_language(b"", None) == "nb"


def test_localised_config_replaces_only_the_named_props():
    base = {
        "components": [{"id": 1, "props": {"label": "Spørsmålet ditt", "lines": 1}}, {"id": 2, "props": {}}]
    }
    english = localised(base, {1: {"label": "Your question"}})
    assert english["components"][0]["props"] == {"label": "Your question", "lines": 1}
    assert base["components"][0]["props"]["label"] == "Spørsmålet ditt"  # the base config is untouched
