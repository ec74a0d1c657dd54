"""The HTTP edge's gate: auth modes, allowed origins, security headers and who is asking.

One ASGI middleware (`Gate`) runs in front of both the API and the mounted Gradio apps, so every face
gets the same rules. It never sends a secret to the browser: the session cookie is an opaque random id
kept server-side, and in proxy mode the user name comes from a header set by a trusted proxy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders

from assistant.core.config import Settings
from ui.embed_notice import (
    BLOCKED_SCRIPT,
    NOTICE_CSP,
    blocked_frame_page,
    framing_origin,
    is_navigation,
    refusal_page,
)
from ui.network import address_in, ip_key, is_loopback
from ui.request_body import read_body, replay
from ui.sessions import (
    SESSION_COOKIE,
    SESSION_IDLE_S,
    SessionStore,
    cookies_of,
)

OPEN_PATHS = ("/healthz", "/readyz")  # liveness probes work in every auth mode
CLIENT_KEY = "kilde_client"  # request.state key holding who is asking (for rate limits and feedback)


def client_key(request) -> str:
    """Who is asking, as the gate recorded it; a Starlette or Gradio request, or None when run in-process."""
    if request is None:
        return "local"
    state = getattr(request, "state", None)
    key = getattr(state, CLIENT_KEY, None) if state is not None else None
    if key:
        return str(key)
    return ip_key(getattr(getattr(request, "client", None), "host", None))


# Gradio routes that make the server fetch a URL named in the request: `file=<url>` streams a remote file and
# `proxy=<url>` relays one. Kilde shows no remote files, so they are refused: the server fetches nothing a
# visitor names (Gradio's own guard still resolves the host and may ask dns.google about it).
FETCHING_PATH = re.compile(r"/gradio_api/(?:proxy=|file[=/]+\s*(?:[a-z][a-z0-9+.-]*:|//))", re.IGNORECASE)
MAX_GRADIO_BODY = 1 << 20  # the chat posts a question and a few filters; no uploads are accepted


def allowed_origins(settings: Settings) -> tuple[str, ...]:
    """KILDE_ALLOWED_ORIGINS as browsers send them: scheme://host[:port], no trailing slash."""
    return tuple(origin.strip().rstrip("/") for origin in settings.allowed_origins if origin.strip())


def frame_ancestors(settings: Settings) -> str:
    return " ".join(["'self'", *allowed_origins(settings)])


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    csp = (
        f"frame-ancestors {frame_ancestors(settings)}; object-src 'none'; base-uri 'self'; form-action 'self'"
    )
    headers = [
        ("content-security-policy", csp),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
    ]
    if not settings.allowed_origins:
        headers.append(("x-frame-options", "SAMEORIGIN"))
    return headers


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    message: str


def json_body(status: int, error: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": error, "message": message}, ensure_ascii=False).encode()


def names_a_file(body: bytes) -> bool:
    """Does a JSON body hold a Gradio file reference (a dict whose `meta._type` is gradio.FileData)?"""
    try:
        data = json.loads(body)
    except ValueError:
        return False  # not JSON: Gradio refuses it itself
    except RecursionError:
        return True
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            meta = value.get("meta")
            if isinstance(meta, dict) and meta.get("_type") == "gradio.FileData":
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


class Gate:
    """Pure ASGI middleware: origin check, auth mode, client identity, security headers, and no Gradio route
    that would fetch a URL a visitor names."""

    def __init__(self, app, settings: Settings, sessions: SessionStore | None = None):
        self.app = app
        self.settings = settings
        self.sessions = sessions or SessionStore()
        self.headers = security_headers(settings)
        self.allowed = allowed_origins(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["type"] == "http" and await self.embed_notice(scope, headers, send):
            return
        refusal = self.check_origin(scope, headers)
        new_cookie = None
        client = None
        if refusal is None and scope["path"] not in OPEN_PATHS:
            client, new_cookie, refusal = self.identify(scope, headers)
        if refusal is not None:
            await self.refuse(refusal, scope, send)
            return
        scope.setdefault("state", {})[CLIENT_KEY] = client or f"ip:{(scope.get('client') or ('?',))[0]}"
        if scope["type"] == "http" and "/gradio_api/" in scope["path"]:
            refusal, receive = await self.check_gradio(scope, headers, receive)
            if refusal is not None:
                await self.refuse(refusal, scope, send)
                return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in self.headers:
                    if name not in out:
                        out[name] = value
                if new_cookie:
                    out.append("set-cookie", new_cookie)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def refuse(self, refusal: Refusal, scope, send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if is_navigation(Headers(scope=scope)):  # a person reads it: a page, not JSON
            body = refusal_page(refusal.status, refusal.message)
            await self.send_body(send, refusal.status, "text/html; charset=utf-8", body, self.headers)
            return
        status, body = json_body(refusal.status, refusal.error, refusal.message)
        await self.send_body(send, status, "application/json", body, self.headers)

    @staticmethod
    async def send_body(send, status: int, content_type: str, body: bytes, headers) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    *[(k.encode(), v.encode()) for k, v in headers],
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def embed_notice(self, scope, headers: Headers, send) -> bool:
        """Say which setting to change when a site that is not allowed embeds Kilde (ui/embed_notice.py).
        Returns True when a notice was sent; the app itself is never sent to such a site."""
        method = scope.get("method", "GET")
        origin = headers.get("origin")
        if (
            scope["path"] == "/gradio.js"
            and method == "GET"
            and origin
            and not self.origin_ok(scope, headers)
        ):
            extra = [
                ("access-control-allow-origin", origin),  # only this static notice; CORS adds Vary
                ("cache-control", "no-store"),
            ]
            await self.send_body(
                send, 200, "text/javascript; charset=utf-8", BLOCKED_SCRIPT.encode(), [*self.headers, *extra]
            )
            return True
        framer = framing_origin(method, headers)
        if framer is None or framer == self.own_origin(scope, headers) or framer in self.allowed:
            return False
        notice = [(k, NOTICE_CSP if k == "content-security-policy" else v) for k, v in self.headers]
        notice = [(k, v) for k, v in notice if k != "x-frame-options"] + [("cache-control", "no-store")]
        await self.send_body(send, 403, "text/html; charset=utf-8", blocked_frame_page(framer), notice)
        return True

    # -- rules ---------------------------------------------------------------------------------------

    async def check_gradio(self, scope, headers: Headers, receive) -> tuple[Refusal | None, object]:
        """Refuse the routes that fetch a URL, and JSON bodies carrying a file reference: Gradio downloads a
        `{"path": "http://…", "meta": {"_type": "gradio.FileData"}}` put in any input. Returns (refusal,
        a `receive` that replays the body already read)."""
        if FETCHING_PATH.search(scope["path"]):
            return Refusal(404, "not_found", "Kilde fetches no URLs and serves no remote files."), receive
        if scope.get("method") != "POST" or headers.get("content-type", "").startswith("multipart/"):
            return None, receive
        body, last = await read_body(receive, MAX_GRADIO_BODY)
        if last["type"] != "http.request":
            return Refusal(400, "bad_request", "The request ended early."), receive
        if body is None:
            return Refusal(413, "too_large", "The request body is too large."), receive
        if names_a_file(body):
            return Refusal(400, "files_not_accepted", "Kilde takes no files or URLs as input."), receive
        return None, replay(body, receive)

    @staticmethod
    def own_origin(scope, headers: Headers) -> str:
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        return f"{scheme}://{headers.get('host', '')}"

    def origin_ok(self, scope, headers: Headers) -> bool:
        origin = headers.get("origin")
        return origin == self.own_origin(scope, headers) or origin in self.allowed

    def check_origin(self, scope, headers: Headers) -> Refusal | None:
        """A cross-origin request is served only for origins in KILDE_ALLOWED_ORIGINS."""
        origin = headers.get("origin")
        if not origin or self.origin_ok(scope, headers):
            return None
        return Refusal(
            403,
            "origin_not_allowed",
            f"Origin {origin} is not allowed. Add it to KILDE_ALLOWED_ORIGINS on the Kilde server.",
        )

    def identify(self, scope, headers: Headers) -> tuple[str | None, str | None, Refusal | None]:
        """(client key, Set-Cookie value or None, refusal or None) for the configured auth mode."""
        mode = self.settings.auth_mode
        peer = (scope.get("client") or (None,))[0]
        if mode == "proxy":
            if not address_in(peer, self.settings.trusted_proxies):
                return (
                    None,
                    None,
                    Refusal(
                        403,
                        "untrusted_client",
                        "Kilde accepts requests only through its trusted proxy (KILDE_TRUSTED_PROXIES).",
                    ),
                )
            user = headers.get(self.settings.proxy_user_header, "").strip()
            if not user:
                return (
                    None,
                    None,
                    Refusal(
                        401,
                        "not_signed_in",
                        f"The proxy sent no {self.settings.proxy_user_header} header; "
                        "sign in through the intranet.",
                    ),
                )
            return f"user:{user}", None, None
        if mode == "session":
            # The key names the address too: the rate limit holds per address, so fresh cookies do not reset it.
            token = cookies_of(headers).get(SESSION_COOKIE)
            if self.sessions.touch(token):
                return f"session:{token[:16]}|ip:{peer}", None, None
            if scope.get("method", "GET") in ("GET", "HEAD"):
                token = self.sessions.new(str(peer))
                if token is None:
                    return (
                        None,
                        None,
                        Refusal(
                            429,
                            "rate_limited",
                            "Too many new sessions from this address; "
                            "keep the session cookie, or try again in a minute.",
                        ),
                    )
                return f"session:{token[:16]}|ip:{peer}", self.cookie(token, scope, headers), None
            return (
                None,
                None,
                Refusal(
                    401,
                    "no_session",
                    "No valid Kilde session: open the Kilde page first; it sets the "
                    "session cookie (any GET request does).",
                ),
            )
        if not is_loopback(peer):
            return (
                None,
                None,
                Refusal(
                    403,
                    "loopback_only",
                    "Auth mode 'none' serves this machine only. Set KILDE_AUTH_MODE=session "
                    "or proxy to serve others.",
                ),
            )
        return f"ip:{peer}", None, None

    def cookie(self, token: str, scope, headers: Headers) -> str:
        secure = scope.get("scheme") == "https" or (
            address_in((scope.get("client") or (None,))[0], self.settings.trusted_proxies)
            and headers.get("x-forwarded-proto") == "https"
        )
        flags = "; Secure; SameSite=None" if secure else "; SameSite=Lax"
        return f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; Max-Age={SESSION_IDLE_S}{flags}"
