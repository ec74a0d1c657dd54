"""Access and exposure of the HTTP face, against the real app served by uvicorn on a loopback port:
crafted article ids and static paths read no file; the server fetches no URL a visitor names; the widget's
origins, the auth modes and the security headers hold on every kind of response."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import gradio
import httpx
import pytest
from starlette.testclient import TestClient

from assistant.testing.corpus import ROOT, SEED_ID

pytestmark = pytest.mark.integration

GRADIO_STATIC = Path(gradio.__file__).parent / "templates"


def raw_get(
    port: int, path: str, method: str = "GET", headers: dict | None = None
) -> tuple[int, dict, bytes]:
    """A request with `path` sent exactly as written (httpx would normalise `..` and re-encode)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def data_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file())


def secrets_of(data_dir: Path) -> list[bytes]:
    """Byte strings that would show a file was served: the start of every index file (unless the file's own
    path holds it, as an id echoed in an error message may), /etc/passwd, the process environment."""
    marks = [b"root:x:0:0", b"SQLite format 3", b"KILDE_DATA_DIR=", b"PATH=/"]
    paths = " ".join(str(p) for p in data_files(data_dir)).encode()
    for path in data_files(data_dir):
        head = path.read_bytes()[:48]
        if len(head.strip()) >= 8 and head.strip() not in paths:
            marks.append(head)
    return marks


def assert_no_file_content(body: bytes, marks: list[bytes], what: str) -> None:
    for mark in marks:
        assert mark not in body, f"{what} returned file content ({mark[:20]!r})"


# -- crafted article ids ---------------------------------------------------------------------------

CRAFTED_IDS = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "..%252f..%252fetc%252fpasswd",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "..%5C..%5Cetc%5Cpasswd",
    "..;/..;/etc/passwd",
    "%C0%AE%C0%AE%2F%C0%AE%C0%AE%2Fetc%2Fpasswd",
    "file:%2F%2F%2Fetc%2Fpasswd",
    "%2Fproc%2Fself%2Fenviron",
    "~%2F.ssh%2Fid_rsa",
    "%00",
    "a%00.txt",
    "ingest.lock%00.json",
    "ingest.lock",
    "chroma.sqlite3",
    "chroma%2Fchroma.sqlite3",
    "chroma/chroma.sqlite3",
    "feedback.jsonl",
    "lexical%2Fkilde%2FCURRENT",
    "..%2Fingest.lock",
    "%2e%2e",
    "%2e",
    ".",
    "..",
    "a" * 513,
    "%41" * 600,
    "b" * 8000,
]


def test_crafted_article_ids_get_a_json_404_or_400_never_a_file(api, ui_index):
    data_dir = ui_index.data_dir
    ids = (
        CRAFTED_IDS
        + [quote(str(p.relative_to(data_dir)), safe="") for p in data_files(data_dir)]
        + [str(p.relative_to(data_dir)) for p in data_files(data_dir)]
        + [quote(str(p), safe="") for p in data_files(data_dir)]
        + [quote(str(ROOT / "pyproject.toml"), safe="")]
    )
    marks = secrets_of(data_dir)
    checked = 0
    for article_id in ids:
        status, headers, body = raw_get(api.port, "/api/articles/" + article_id)
        what = f"/api/articles/{article_id[:60]}"
        assert status in (400, 404), f"{what}: {status}"
        assert headers["content-type"].startswith("application/json"), what
        error = json.loads(body)
        assert set(error) == {"error", "message"} and error["error"] in ("not_found", "bad_request"), what
        assert "Traceback" not in error["message"]
        assert_no_file_content(body, marks, what)
        checked += 1
    assert checked == len(ids) >= 40
    # The real id still works, so the refusals above are not a broken route.
    assert raw_get(api.port, f"/api/articles/{SEED_ID}")[0] == 200


def test_a_nul_byte_or_an_oversized_request_line_is_refused_before_the_app(api):
    for line in (b"GET /api/articles/\x00etc HTTP/1.1", b"GET /api/articles/" + b"a" * 70_000 + b" HTTP/1.1"):
        with socket.create_connection(("127.0.0.1", api.port), timeout=30) as s:
            s.sendall(line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 400"), data[:80]


# -- static and file routes of the UI ------------------------------------------------------------------


def traversal_paths(data_dir: Path) -> list[str]:
    up = "../" * 12
    enc = "..%2f" * 12
    target = str(data_dir / "chroma" / "chroma.sqlite3").lstrip("/")
    paths = []
    for prefix in ("", "/widget"):
        paths += [
            f"{prefix}/static/{up}etc/passwd",
            f"{prefix}/static/{enc}etc%2fpasswd",
            f"{prefix}/static/" + "%2e%2e/" * 12 + "etc/passwd",
            f"{prefix}/static/" + "%252e%252e%252f" * 12 + "etc/passwd",
            f"{prefix}/static/{up}{target}",
            f"{prefix}/static/{enc}{quote(target, safe='')}",
            f"{prefix}/assets/{up}etc/passwd",
            f"{prefix}/assets/{enc}etc%2fpasswd",
            f"{prefix}/assets/..%5c..%5cetc%5cpasswd",
            f"{prefix}/gradio_api/file=/etc/passwd",
            f"{prefix}/gradio_api/file={up}etc/passwd",
            f"{prefix}/gradio_api/file=" + "%2e%2e/" * 12 + "etc/passwd",
            f"{prefix}/gradio_api/file=/proc/self/environ",
            f"{prefix}/gradio_api/file={data_dir}/chroma/chroma.sqlite3",
            f"{prefix}/gradio_api/file={data_dir}/ingest.lock",
            f"{prefix}/gradio_api/file={ROOT}/pyproject.toml",
            f"{prefix}/gradio_api/file=pyproject.toml",
            f"{prefix}/gradio_api/file={ROOT}/ui/static/../../assistant/core/config.py",
            f"{prefix}/gradio_api/file={GRADIO_STATIC}/../../../../../../etc/passwd",
            f"{prefix}/gradio_api/file/etc/passwd",
            f"{prefix}/gradio_api/file/{data_dir}/ingest.lock",
            f"{prefix}/custom_component/x/client/{up}etc/passwd",
        ]
    return [
        *paths,
        f"/gradio.js/{up}etc/passwd",
        "//etc/passwd",
        f"/{up}etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ]


def test_static_and_file_routes_never_serve_files_outside_their_folder(api, ui_index):
    marks = secrets_of(ui_index.data_dir)
    paths = traversal_paths(ui_index.data_dir)
    for path in paths:
        for method in ("GET", "HEAD"):
            status, _headers, body = raw_get(api.port, path, method)
            assert status in (400, 403, 404, 405), f"{method} {path}: {status}"
            assert_no_file_content(body, marks, f"{method} {path}")
    assert len(paths) >= 40
    # The routes themselves work: Gradio's own assets are served.
    assert raw_get(api.port, "/gradio.js")[0] == 200 and raw_get(api.port, "/favicon.ico")[0] == 200


def test_the_gradio_endpoints_take_no_ids_paths_or_urls(api):
    expected = [
        "question_text",
        "since_date",
        "until_date",
        "source_names",
        "article_languages",
        "interface_language",
    ]
    for path, name in (("/gradio_api/info", "/chat"), ("/widget/gradio_api/info", "/widget_chat")):
        info = httpx.get(api.url + path).json()
        assert list(info["named_endpoints"]) == [name] and not info.get("unnamed_endpoints")
        assert [p["parameter_name"] for p in info["named_endpoints"][name]["parameters"]] == expected


# -- the server fetches no URL a visitor names -------------------------------------------------------


class Listener:
    """A plain HTTP server on 127.0.0.1 that records every request it gets."""

    def __init__(self):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_HEAD = do_PUT = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def file_data(url: str) -> dict:
    return {"path": url, "url": url, "orig_name": "x.txt", "meta": {"_type": "gradio.FileData"}}


def gradio_call(base: str, api_name: str, data: list) -> tuple[int, str]:
    """Gradio's two-step call API: POST the inputs, then read the event stream to its end."""
    started = httpx.post(f"{base}/gradio_api/call/{api_name}", json={"data": data}, timeout=60)
    if started.status_code != 200:
        return started.status_code, started.text
    event = started.json()["event_id"]
    return 200, httpx.get(f"{base}/gradio_api/call/{api_name}/{event}", timeout=120).text


def test_the_server_fetches_no_url_a_visitor_names(api, monkeypatch):
    """The listener stands for any host on the net: Gradio's SSRF guard (safehttpx) is told that loopback is
    public, so a fetch that would reach a public host reaches the listener instead and is seen."""
    import safehttpx

    monkeypatch.setattr(safehttpx, "is_public_ip", lambda ip: True)
    listener = Listener()
    here = listener.url
    try:
        url = api.url
        asked = [
            httpx.post(url + "/api/ask", json={"question": f"Hva står på {here}/question ?"}, timeout=120),
            httpx.post(
                url + "/api/ask",
                timeout=120,
                json={
                    "question": "What does Article 4 say?",
                    "history": [
                        {"role": "user", "content": f"Read {here}/history first"},
                        {"role": "assistant", "content": f"See {here}/answer"},
                    ],
                },
            ),
            # a source no article has is refused, naming the archive's own
            httpx.post(
                url + "/api/ask",
                json={"question": "What does Article 4 say?", "filters": {"sources": [f"{here}/source"]}},
                timeout=120,
            ),
            httpx.get(f"{url}/api/articles/{quote(here + '/article', safe='')}"),
            httpx.get(
                url + "/",
                headers={
                    "Referer": f"{here}/referer",
                    "X-Forwarded-Host": here[7:],
                    "Forwarded": f"host={here[7:]}",
                },
            ),
        ]
        assert [r.status_code for r in asked] == [200, 200, 400, 404, 200]
        fetching = [
            f"/gradio_api/file={here}/file-eq",
            f"/gradio_api/file/{here}/file-slash",
            f"/gradio_api/file=%20{here}/file-space",
            f"/widget/gradio_api/file={here}/widget-file",
            f"/gradio_api/proxy={here}/proxy",
            f"/widget/gradio_api/proxy={here}/widget-proxy",
            f"/gradio_api/file={here.replace('http', 'HTTP')}/upper",
        ]
        for path in fetching:
            for method in ("GET", "HEAD"):
                status, _headers, body = raw_get(api.port, path, method)
                assert status in (400, 403, 404), f"{method} {path}: {status}"
                assert body != b"ok"
        chat = ["What does Article 4 say?", "", "", [], [], "en", None]
        assert "event: complete" in gradio_call(url, "chat", [f"{chat[0]} {here}/chat", *chat[1:]])[1]
        smuggled = [
            (url, "chat", [file_data(f"{here}/filedata-question"), *chat[1:]]),
            (url, "chat", [chat[0], "", "", [file_data(f"{here}/filedata-source")], [], "en", None]),
            (url, "chat", [chat[0], {"deep": [file_data(f"{here}/filedata-deep")]}, *chat[2:]]),
            (url + "/widget", "widget_chat", [file_data(f"{here}/filedata-widget"), *chat[1:]]),
        ]
        for base, name, data in smuggled:
            status, text = gradio_call(base, name, data)
            assert status == 400 and "files_not_accepted" in text, (status, text[:200])
        time.sleep(1.0)
        assert listener.seen == [], f"the server fetched {listener.seen}"

        # The rig can see a fetch: Gradio's own downloader, with the same guard, reaches the listener.
        from gradio import processing_utils

        # In a thread of its own: the browser tests may leave an event loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, processing_utils.async_ssrf_protected_get(f"{here}/control")).result()
        assert listener.seen == ["GET /control"]
    finally:
        listener.stop()


# -- origins, auth modes and security headers ------------------------------------------------------------

HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def check_headers(response, ancestors: str, label: str) -> None:
    csp = response.headers.get("content-security-policy", "")
    for directive in (
        f"frame-ancestors {ancestors};",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ):
        assert directive in csp, f"{label}: {directive!r} not in CSP {csp!r}"
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, f"{label}: {name}"


ANY_RESPONSE = [
    ("GET", "/", None),
    ("GET", "/widget/", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
    ("GET", "/gradio.js", None),
    ("GET", "/config", None),
    ("GET", "/widget/config", None),
    ("GET", "/gradio_api/info", None),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", f"/api/articles/{SEED_ID}", None),
    ("GET", "/api/articles/nope", None),
    ("GET", "/api/nothing", None),
    ("GET", "/api/ask", None),
    ("POST", "/api/ask", {"question": ""}),
    ("POST", "/api/ask", {"nope": 1}),
    ("GET", "/static/../../etc/passwd", None),
    ("GET", "/gradio_api/file=/etc/passwd", None),
    ("GET", "/gradio_api/file=http://x.example/", None),
    ("GET", "/no/such/page", None),
]


def test_security_headers_on_every_kind_of_response(ui_index, ui_assistant):
    from ui.server import create_app

    listed = "https://intranet.example.org"
    for settings, ancestors, frame_options in (
        (ui_index, "'self'", "SAMEORIGIN"),
        (
            ui_index.replace(allowed_origins=(listed + "/", "https://wiki.example.org")),
            f"'self' {listed} https://wiki.example.org",
            None,
        ),
    ):
        client = TestClient(
            create_app(settings, ui_assistant), base_url="http://localhost", client=("127.0.0.1", 5000)
        )
        responses = [(f"{m} {p}", client.request(m, p, json=body)) for m, p, body in ANY_RESPONSE]
        responses += [
            (
                "foreign origin",
                client.post("/api/ask", json={"question": "x"}, headers={"Origin": "https://evil.example"}),
            ),
            (
                "other machine",
                TestClient(
                    create_app(settings, ui_assistant),
                    base_url="http://localhost",
                    client=("192.0.2.1", 5000),
                ).get("/"),
            ),
        ]
        assert {r.status_code for _, r in responses} >= {200, 400, 403, 404, 405, 422}
        for label, response in responses:
            check_headers(response, ancestors, label)
            assert response.headers.get("x-frame-options") == frame_options, label


def test_cross_origin_requests_only_for_listed_origins(ui_index, ui_assistant):
    from ui.server import create_app

    listed = "https://intranet.example.org"
    client = TestClient(
        create_app(ui_index.replace(allowed_origins=(listed,)), ui_assistant),
        base_url="http://localhost",
        client=("127.0.0.1", 5000),
    )
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = client.options("/api/ask", headers={"Origin": listed, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == listed
    assert ok.headers["access-control-allow-credentials"] == "true"
    allowed = client.post("/api/ask", json={"question": "Hva sier artikkel 4?"}, headers={"Origin": listed})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == listed

    lookalikes = [
        "https://intranet.example.org.evil.example",
        "https://intranet.example.org:8443",
        "http://intranet.example.org",
        "https://evil-intranet.example.org",
        "null",
        "https://intranet.example.org@evil.example",
        "https://evil.example",
        "http://127.0.0.1:7860",
    ]
    for origin in lookalikes:
        pre = client.options("/api/ask", headers={"Origin": origin, **preflight})
        assert "access-control-allow-origin" not in pre.headers, origin
        for method, path, body in (
            ("POST", "/api/ask", {"question": "Hva sier artikkel 4?"}),
            ("GET", f"/api/articles/{SEED_ID}", None),
            ("GET", "/widget/config", None),
            ("POST", "/gradio_api/call/chat", {"data": ["Hva?", "", "", [], [], "en", None]}),
            ("POST", "/widget/gradio_api/queue/join", {"data": [], "fn_index": 0}),
        ):
            refused = client.request(method, path, json=body, headers={"Origin": origin})
            assert refused.status_code == 403, (origin, path)
            assert refused.json()["error"] == "origin_not_allowed"
            assert "access-control-allow-origin" not in refused.headers


def test_auth_modes_hold_on_the_gradio_routes_too(ui_index, ui_assistant):
    from ui.server import create_app

    chat = {"data": ["Hva sier artikkel 4?", "", "", [], [], "en", None]}
    routes = [
        ("GET", "/", None),
        ("GET", "/widget/", None),
        ("GET", "/config", None),
        ("GET", "/docs", None),
        ("GET", "/openapi.json", None),
        ("GET", "/gradio.js", None),
        ("POST", "/gradio_api/call/chat", chat),
        ("POST", "/widget/gradio_api/call/widget_chat", chat),
        ("POST", "/api/ask", {"question": "Hva?"}),
    ]
    remote = TestClient(
        create_app(ui_index, ui_assistant), base_url="http://localhost", client=("192.0.2.7", 5000)
    )
    for method, path, body in routes:  # auth mode none: this machine only
        refused = remote.request(method, path, json=body)
        assert refused.status_code == 403 and refused.json()["error"] == "loopback_only", path

    proxied = create_app(ui_index.replace(auth_mode="proxy", trusted_proxies=("10.0.0.5",)), ui_assistant)
    proxy = TestClient(proxied, base_url="http://localhost", client=("10.0.0.5", 5000))
    forged = TestClient(proxied, base_url="http://localhost", client=("10.0.0.6", 5000))
    for method, path, body in routes:
        assert proxy.request(method, path, json=body).json()["error"] == "not_signed_in", path
        response = forged.request(method, path, json=body, headers={"X-Forwarded-User": "admin"})
        assert response.status_code == 403 and response.json()["error"] == "untrusted_client", path
    assert (
        proxy.post("/gradio_api/call/chat", json=chat, headers={"X-Forwarded-User": "kari"}).status_code
        == 200
    )

    sessions = create_app(ui_index.replace(auth_mode="session"), ui_assistant)
    stranger = TestClient(sessions, base_url="http://localhost", client=("192.0.2.8", 5000))
    for method, path, body in routes:
        if method == "POST":
            refused = stranger.request(
                method, path, json=body, cookies={"kilde_session": "forged-or-expired"}
            )
            assert refused.status_code == 401 and refused.json()["error"] == "no_session", path


def test_session_cookie_is_secure_only_behind_a_trusted_https_proxy():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from assistant.core.config import Settings
    from ui.security import Gate

    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    app.add_middleware(Gate, settings=Settings(auth_mode="session", trusted_proxies=("10.0.0.5",)))
    via_proxy = TestClient(app, base_url="http://localhost", client=("10.0.0.5", 1)).get(
        "/", headers={"X-Forwarded-Proto": "https"}
    )
    assert "; Secure; SameSite=None" in via_proxy.headers["set-cookie"]
    spoofed = TestClient(app, base_url="http://localhost", client=("192.0.2.9", 1)).get(
        "/", headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" not in spoofed.headers["set-cookie"] and "SameSite=Lax" in spoofed.headers["set-cookie"]


def test_an_idle_session_expires():
    from ui.sessions import SessionStore

    now = [0.0]
    store = SessionStore(idle_s=60, clock=lambda: now[0])
    token = store.new()
    now[0] = 59
    assert store.touch(token)
    now[0] = 59 + 61
    assert not store.touch(token) and not store.touch(token)
    assert not store.touch("made-up") and not store.touch(None)


def test_the_default_bind_address_is_loopback():
    """`kilde serve` without --host or KILDE_HOST (the listening socket itself: test_key_exposure.py)."""
    from assistant.cli import build_parser
    from assistant.core.config import Settings, resolve_settings
    from ui.server import check_binding

    assert Settings().host == "127.0.0.1"
    assert resolve_settings(environ={}, config_file=Path("/nonexistent")).host == "127.0.0.1"
    assert build_parser().parse_args(["serve"]).host is None  # so the default above applies
    check_binding(Settings())  # auth mode none on loopback: fine
