"""The HTTP edge, round two (docs/RELIABILITY.md, items 10-15): size limits, trusted host names, forwarded
headers from trusted proxies only, private monitoring, no uploads, sessions that cannot reset the rate
limit, lone surrogates, and error shapes. The real app (API and both Gradio faces) on a real uvicorn."""

from __future__ import annotations

import json

import httpx
import pytest

from assistant.testing.servers import ThreadServer

ASK = {"question": "Hva forplikter artikkel 4 partene til?"}


@pytest.fixture(scope="module")
def serve(built_index, assistant):
    from ui.server import create_app

    servers = []

    def start(**changes) -> str:
        server = ThreadServer(create_app(built_index.replace(**changes), assistant)).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def url(serve) -> str:
    return serve(rate_limit_per_minute=1000)


def _refused(response: httpx.Response, status: int, error: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert body["error"] == error, body
    return body


# -- 10. sizes --------------------------------------------------------------------------------------------


def test_a_large_body_is_refused_with_413_json_declared_or_streamed(url):
    big = json.dumps(
        {
            "question": "x",
            "history": [{"role": "user", "content": "y" * 20_000}] * 40,
            "filters": {"sources": ["z" * 100_000] * 20},
        }
    )
    _refused(
        httpx.post(f"{url}/api/ask", content=big, headers={"content-type": "application/json"}),
        413,
        "too_large",
    )

    def chunks():
        for _ in range(64):
            yield b" " * 65536

    _refused(
        httpx.post(f"{url}/api/ask", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "too_large",
    )


def test_many_or_large_headers_are_refused_with_413_json(url):
    many = {f"x-h{i}": "1" for i in range(300)}
    _refused(httpx.get(f"{url}/api/articles/x", headers=many), 413, "too_large")
    large = {f"x-big-{i}": "v" * 8000 for i in range(5)}
    response = httpx.get(f"{url}/api/articles/x", headers=large)
    assert response.status_code in (413, 400, 431), response.status_code  # refused, by Kilde or by uvicorn
    if response.headers.get("content-type") == "application/json":
        assert response.json()["error"] == "too_large"


# -- 12. lone surrogates ------------------------------------------------------------------------------------


def test_a_lone_surrogate_is_a_4xx_json_error_not_a_500(url):
    raw = '{"question": "toll \\ud800 price"}'
    body = _refused(
        httpx.post(f"{url}/api/ask", content=raw, headers={"content-type": "application/json"}),
        400,
        "bad_request",
    )
    assert "surrogate" in body["message"]
    raw = '{"question": "toll price", "filters": {"sources": ["a\\udfff"]}}'
    _refused(
        httpx.post(f"{url}/api/ask", content=raw, headers={"content-type": "application/json"}),
        400,
        "bad_request",
    )


def test_a_lone_surrogate_in_a_search_query_is_a_400_not_a_500(url):
    """/api/search handed it to the embedder, whose UTF-8 encoding failed: a 500 and a traceback in the log."""
    raw = '{"query": "artikkel \\ud800 4"}'
    body = _refused(
        httpx.post(f"{url}/api/search", content=raw, headers={"content-type": "application/json"}),
        400,
        "bad_request",
    )
    assert body["message"].startswith("query: contains a lone surrogate"), body


def test_a_lone_surrogate_on_the_command_line_is_one_line(built_index, monkeypatch, capsys):
    from assistant.cli import main

    monkeypatch.setenv("KILDE_DATA_DIR", str(built_index.data_dir))
    monkeypatch.setenv("KILDE_CACHE_DIR", str(built_index.cache_dir))
    code = main(["ask", "toll \udcff price"])  # how Python hands over a byte that is not UTF-8
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("kilde: ") and len(err.strip().splitlines()) == 1, err


# -- 13, 14. host names and forwarded headers -------------------------------------------------------------


def test_an_untrusted_host_name_is_refused(url):
    evil = {"Host": "rebind.evil.example", "Origin": "http://rebind.evil.example"}
    _refused(httpx.post(f"{url}/api/ask", json=ASK, headers=evil), 400, "host_not_allowed")
    _refused(httpx.get(f"{url}/config", headers=evil), 400, "host_not_allowed")
    assert httpx.get(f"{url}/healthz", headers={"Host": "localhost"}).status_code == 200


def test_a_trusted_proxy_may_forward_https_and_its_host(serve):
    url = serve(rate_limit_per_minute=1000, trusted_hosts=("kilde.intranet.example",))
    forwarded = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "kilde.intranet.example",
        "Origin": "https://kilde.intranet.example",
    }
    assert httpx.post(f"{url}/api/ask", json=ASK, headers=forwarded).status_code == 200
    config = httpx.get(f"{url}/config", headers=forwarded).json()
    assert config["root"].startswith("https://kilde.intranet.example")
    # A forwarded host that is not trusted is refused like a Host header would be.
    _refused(
        httpx.get(f"{url}/config", headers={"X-Forwarded-Host": "evil.example"}), 400, "host_not_allowed"
    )


def test_forwarded_headers_from_anyone_else_are_ignored(serve):
    url = serve(rate_limit_per_minute=1000, trusted_proxies=("10.9.9.9",))
    config = httpx.get(
        f"{url}/config", headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    ).json()
    assert "evil.example" not in config["root"] and not config["root"].startswith("https")


# -- 15. private monitoring, error shapes -------------------------------------------------------------------


def test_monitoring_and_uploads_are_not_served(url):
    for path in ("/monitoring/summary", "/monitoring", "/widget/monitoring/summary"):
        _refused(httpx.get(f"{url}{path}"), 404, "not_found")
    files = [("files", (f"f{i}.txt", b"x" * 1000, "text/plain")) for i in range(5)]
    for path in ("/gradio_api/upload", "/widget/gradio_api/upload"):
        _refused(httpx.post(f"{url}{path}", files=files), 404, "not_found")


def test_error_shapes(url):
    for raw in (b'{"question": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000):
        _refused(
            httpx.post(f"{url}/api/ask", content=raw, headers={"content-type": "application/json"}),
            422,
            "invalid_request",
        )
    _refused(httpx.put(f"{url}/api/ask", json=ASK), 405, "method_not_allowed")
    body = _refused(
        httpx.post(f"{url}/api/ask", json={**ASK, "filters": {"since": "9" * 100_000}}), 400, "bad_request"
    )
    assert len(body["message"]) < 300


# -- 11. sessions -------------------------------------------------------------------------------------------


def test_fresh_cookies_do_not_reset_the_rate_limit_and_sessions_are_bounded(serve):
    url = serve(rate_limit_per_minute=3, auth_mode="session")
    answered = 0
    for _ in range(8):
        with httpx.Client(base_url=url) as client:  # a new cookie jar: a fresh session every question
            assert client.get("/healthz").status_code == 200
            client.get("/api/articles/none")  # any GET sets the cookie
            answered += client.post("/api/ask", json=ASK).status_code == 200
    assert answered == 3
    minted = [httpx.get(f"{url}/api/articles/none").status_code for _ in range(30)]
    assert 429 in minted, minted  # new sessions from one address are limited


def test_a_client_over_its_limit_is_refused_before_its_body_is_parsed(serve):
    url = serve(rate_limit_per_minute=1)
    assert httpx.post(f"{url}/api/ask", json=ASK, timeout=120).status_code == 200
    response = httpx.post(
        f"{url}/api/ask", content=b"{not json", headers={"content-type": "application/json"}
    )
    _refused(response, 429, "rate_limited")  # not 422: the body was never parsed
    assert int(response.headers["retry-after"]) >= 1


def test_a_client_over_its_limit_is_refused_before_its_body_is_read(serve):
    """An over-limit client retrying at once with 800 KB bodies costs the server no reading of them: the 429
    comes back while most of the declared body has not even been sent."""
    import socket
    from urllib.parse import urlsplit

    url = serve(rate_limit_per_minute=1)
    assert httpx.post(f"{url}/api/ask", json=ASK, timeout=120).status_code == 200
    address = urlsplit(url)
    head = (
        f"POST /api/ask HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
        "Content-Length: 800000\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.encode() + b'{"question": "' + b"x" * 1000)
        reply = sock.recv(65536)  # before the change, the server waited here for the other 799 KB
    assert reply.startswith(b"HTTP/1.1 429"), reply[:200]
    assert b'"rate_limited"' in reply
