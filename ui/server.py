"""`create_app(settings)`: FastAPI with the API, the chat at / and the widget at /widget; `serve` runs it.

Middleware, outermost first: CORS (only KILDE_ALLOWED_ORIGINS), then `ui.security.Gate` (origin check,
auth mode, client identity, CSP frame-ancestors and other security headers), and innermost
`ui.gradio_calls.EventCalls` (a call of the chat's events that names none is a 4xx). Errors become JSON
`{"error", "message"}` bodies with a 4xx/5xx status; no handler ever returns a stack trace.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from assistant.answering.assistant import Assistant
from assistant.core.config import Settings
from assistant.core.errors import (
    ConfigError,
    KildeError,
)
from ui.api import NON_FINITE, NOT_JSON, answer_turns, api_router, status_of
from ui.app import CSS_PATH, build_app, theme
from ui.edge import Limits
from ui.fairness import EarlyRateLimit
from ui.feedback import FeedbackLog
from ui.gradio_calls import EventCalls
from ui.limits import RateLimiter
from ui.listener import http_url, listening, port_of, serve_on
from ui.network import is_loopback
from ui.openai_api import openai_router
from ui.openai_errors import INTERNAL_ERROR, PREFIX, OpenAIErrors, error_body, invalid_body
from ui.page_language import PageLanguage
from ui.search_api import search_router
from ui.security import Gate, allowed_origins, security_headers
from ui.sessions import SessionStore
from ui.widget import build_widget, gradio_loader

log = logging.getLogger("kilde.ui")
GRADIO_JS = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"


def _version() -> str:
    try:
        return version("kilde")
    except PackageNotFoundError:
        return "0"


def error_response(status: int, error: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[str, list[dict]]:
    errors = exc.errors()
    details = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        details.append({"field": where, "problem": err.get("msg", "invalid")})
    if any(err.get("type") == "json_invalid" for err in errors):
        return NOT_JSON, [{"field": "body", "problem": "not valid JSON"}]
    if errors and errors[0]["type"] == NON_FINITE:  # as any other body that is not JSON, saying why
        message = errors[0]["msg"]
        return message, [{"field": "body", "problem": message}]
    text = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return f"Invalid request: {text}", details


def install_error_handlers(app: FastAPI, headers: Sequence[tuple[str, str]] = ()) -> None:
    """Kilde's error shape for every failure a route raises. `headers`: the security headers, for the 500, which
    Starlette's outermost error middleware sends outside the Gate that adds them to every other answer."""

    @app.exception_handler(KildeError)
    async def kilde_error(request: Request, exc: KildeError):
        status, code = status_of(exc)
        # rate limited, busy (ui/fairness.py), or the store's server unreachable (StoreUnreachableError)
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        return error_response(status, code, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        if request.scope["path"].startswith(PREFIX):
            # OpenAI's one error, naming the parameter by its path in the body (`messages[0].content`)
            code, message, param = invalid_body(exc.errors(), exc.body)
            return JSONResponse(error_body(400, code, message, param), status_code=400)
        message, details = validation_message(exc)
        return JSONResponse(
            {"error": "invalid_request", "message": message, "details": details}, status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and str(exc.detail).startswith("There was an error parsing the body"):
            # Not UTF-8, or nested too deeply to parse: the same shape as any other invalid body.
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "message": NOT_JSON,
                    "details": [{"field": "body", "problem": "not valid JSON"}],
                },
                status_code=422,
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return error_response(500, "internal_error", INTERNAL_ERROR, dict(headers) or None)


def create_app(settings: Settings, assistant: Assistant | None = None) -> FastAPI:
    """The whole HTTP face. Builds the assistant (and so fails early, naming `kilde ingest`, without an index)."""
    if assistant is None:
        from assistant.build import build_assistant

        assistant = build_assistant(settings, follow_in_background=True)
    limiter = RateLimiter(settings.rate_limit_per_minute)
    feedback = FeedbackLog(settings.feedback_path)
    # FastAPIOffline serves Swagger UI from the installed package: /docs works on an offline intranet.
    app = FastAPIOffline(
        title="Kilde",
        version=_version(),
        description="Cited answers from a Norwegian and English news archive. "
        "The chat is at /, the embeddable widget at /widget.",
    )
    install_error_handlers(app, security_headers(settings))
    turns = answer_turns(settings)
    app.include_router(openai_router(assistant, limiter, turns))
    app.include_router(search_router(assistant, limiter, turns))  # before the /api/{path} catch-all
    app.include_router(api_router(assistant, settings, limiter, turns))

    @app.get("/widget", include_in_schema=False)
    def widget_slash(request: Request) -> RedirectResponse:
        # The query goes along: an embed of /widget?lang=en stays English.
        query = request.url.query
        return RedirectResponse("/widget/" + (f"?{query}" if query else ""), status_code=307)

    loader = gradio_loader(GRADIO_JS.read_text(encoding="utf-8"))

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js() -> Response:
        """Gradio's web-component loader, served locally so `<gradio-app>` works without a CDN, behind a guard
        that keeps the host page's `<html lang>` (ui/widget.py)."""
        return Response(loader, media_type="text/javascript")

    widget = build_widget(assistant, settings, limiter, feedback)
    chat = build_app(assistant, settings, limiter, feedback)
    # Innermost: a call of the chat's events that names none, or sends too few inputs, is a 4xx, not Gradio's 500.
    app.add_middleware(EventCalls, apps={"": chat, "/widget": widget})
    app.add_middleware(EarlyRateLimit, limiter=limiter)  # inside the Gate, which names the client
    app.add_middleware(Gate, settings=settings, sessions=SessionStore())
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(allowed_origins(settings)),
        allow_credentials=True,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["content-type", "accept", "accept-language", "x-gradio-user"],
        max_age=600,
    )
    app.add_middleware(PageLanguage)  # the chat's page and config in the visitor's language
    app.add_middleware(Limits, settings=settings)  # sizes, host names, forwarded headers
    # Outermost, so every refusal under /v1/ (the Gate's, a body too large, an unknown host name) gets OpenAI's
    # error shape: the `openai` client shows only "Error code: 413" for any other body.
    app.add_middleware(OpenAIErrors, headers=security_headers(settings))

    mount = {
        "server_name": settings.host,
        "server_port": settings.port,
        # No "Use via API" panel: Gradio builds one API description per app from the component labels and
        # first values, so it cannot follow the page's language (docs/ui.md has the APIs, /docs the schema).
        "footer_links": [],
        "run_history": False,
        "show_error": False,
        "ssr_mode": False,
        "theme": theme(),
        "css_paths": [CSS_PATH],
        "max_file_size": "1mb",
    }  # the UI takes no uploads
    gr.mount_gradio_app(app, widget, path="/widget", **mount)
    gr.mount_gradio_app(app, chat, path="/", **mount)
    return app


def check_binding(settings: Settings) -> None:
    if settings.auth_mode == "none" and not is_loopback(settings.host):
        raise ConfigError(
            f"Auth mode 'none' serves loopback only, but --host is {settings.host}. "
            "Use --host 127.0.0.1, or set KILDE_AUTH_MODE=session or proxy (see docs/ui.md)."
        )


def check_model_server(assistant: Assistant) -> None:
    """At start-up: say when the model server cannot be reached or does not list the model. Kilde still
    starts (answers fall back to extractive ones), and /readyz reports the same as `degraded`."""
    status = assistant.model_status()
    if status is not None and (status["status"] != "ok" or status["model_listed"] is False):
        log.warning(
            "model server: %s; answers fall back to the extractive backend while this lasts", status["detail"]
        )


def warm_up(assistant: Assistant) -> None:
    """Load the models before the first visitor: one question, answered and thrown away."""
    from assistant.answering.context import AskRequest

    try:
        assistant.ask(AskRequest("Hva forplikter artikkel 4 partene til?"))
    except KildeError as exc:
        log.warning("warm-up question failed: %s", exc)


def serve(settings: Settings, banner: Callable[[str], str] | None = None) -> int:
    """Serve until Ctrl-C. `banner(url)`: the line printed once the models are loaded, given the URL served."""
    check_binding(settings)
    with listening(settings) as listeners:
        # With --port 0 the system chose the port: the banner and the app name that one.
        settings = settings.replace(port=port_of(listeners))
        from assistant.build import build_assistant

        assistant = build_assistant(settings, follow_in_background=True)
        check_model_server(assistant)
        warm_up(assistant)
        app = create_app(settings, assistant)
        if banner:
            print(banner(http_url(settings.host, settings.port)), flush=True)
        return serve_on(app, listeners)
