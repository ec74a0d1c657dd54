"""The chat page in the visitor's language from its first paint.

Gradio sends one page config per app, built once. `PageLanguage` (ASGI middleware) reads the language of
each request (`?lang=`, else `Accept-Language`) into a context variable, and `LocalisedBlocks.config`
answers with a copy of the config whose labels, placeholders and initial texts are in that language. So an
English browser never sees the Norwegian page first (the page, `/config` for `<gradio-app>`, alike).
"""

from __future__ import annotations

import copy
from contextvars import ContextVar
from urllib.parse import parse_qs

import gradio as gr
from starlette.datastructures import Headers

from ui.i18n import from_accept_language, normalise_language

PAGE_LANGUAGE: ContextVar[str | None] = ContextVar("kilde_page_language", default=None)


def request_language(query_string: bytes, accept_language: str | None) -> str:
    wanted = parse_qs(query_string.decode("latin-1")).get("lang")
    if wanted:
        return normalise_language(wanted[0])
    return from_accept_language(accept_language)


class PageLanguage:
    """Pure ASGI middleware: sets PAGE_LANGUAGE for the request it passes on."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        language = request_language(
            scope.get("query_string", b""), Headers(scope=scope).get("accept-language")
        )
        token = PAGE_LANGUAGE.set(language)
        try:
            await self.app(scope, receive, send)
        finally:
            PAGE_LANGUAGE.reset(token)


def localised(config: dict, texts: dict[int, dict]) -> dict:
    """A copy of a Blocks config with component props replaced: {component id: {prop: value}}."""
    config = copy.deepcopy(config)
    for component in config.get("components", []):
        props = texts.get(component.get("id"))
        if props:
            component.setdefault("props", {}).update(props)
    return config


class LocalisedBlocks(gr.Blocks):
    """`gr.Blocks` whose `config` is in the request's language. `page_text` maps a language to
    {component id: props}; ui/app.py fills it from the same texts the in-page language switch uses."""

    def __init__(self, *args, **kwargs):
        self.page_text: dict[str, dict[int, dict]] = {}
        self._base_config: dict | None = None
        self._localised: dict[str, tuple[dict, dict]] = {}
        super().__init__(*args, **kwargs)

    @property
    def config(self):
        base = self._base_config
        language = PAGE_LANGUAGE.get()
        if base is None or language not in self.page_text:
            return base
        cached = self._localised.get(language)
        if cached is None or cached[0] is not base:
            cached = (base, localised(base, self.page_text[language]))
            self._localised[language] = cached
        return cached[1]

    @config.setter
    def config(self, value):
        self._base_config = value
        self._localised = {}

    def get_api_info(self, all_endpoints: bool = False, page: str | None = None):
        """One API description for everybody (Gradio caches the first one it builds): the default texts."""
        token = PAGE_LANGUAGE.set(None)
        try:
            return super().get_api_info(all_endpoints=all_endpoints, page=page)
        finally:
            PAGE_LANGUAGE.reset(token)
