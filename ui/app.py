"""`build_app(assistant, settings) -> gr.Blocks`: the chat, a thin adapter over `Assistant.stream`.

No retrieval or prompting here. Per-user state (the conversation) lives in a `gr.State`, one per browser
session; the only shared objects are the ones passed in (assistant, rate limiter, feedback log).
Everything shown is rendered by ui/render.py as escaped text.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from assistant.assistant import AskRequest, Assistant, Delta
from assistant.config import Settings
from assistant.errors import KildeError
from assistant.types import Answer, Filters, Turn
from ingest.articles import parse_date
from ui import render
from ui.feedback import FeedbackLog, feedback_record
from ui.i18n import DEFAULT_LANGUAGE, from_accept_language, normalise_language, t
from ui.security import CLIENT_KEY, RateLimiter

STATIC = Path(__file__).with_name("static")
CSS_PATH = STATIC / "kilde.css"
STREAM_INTERVAL_S = 0.05  # at most ~20 screen updates a second while an answer streams

# Clicking a [n] marker or a source sends (turn, n) to the server, which renders the article view.
CLICK_JS = """
element.addEventListener('click', (event) => {
  const target = event.target.closest('button[data-n][data-turn]');
  if (!target || !element.contains(target)) return;
  event.preventDefault();
  trigger('click', {turn: Number(target.dataset.turn), n: Number(target.dataset.n)});
});
"""
# When a new article is shown, scroll it to the highlighted quote.
SCROLL_JS = """
watch('value', () => {
  const mark = element.querySelector('#kilde-hl');
  if (mark) mark.scrollIntoView({block: 'center', behavior: 'instant'});
});
"""


@dataclass
class ChatSession:
    """One browser session's conversation. Held in gr.State, never at module level."""

    exchanges: list[render.Exchange] = field(default_factory=list)
    filters: list[Filters] = field(default_factory=list)

    def history(self) -> tuple[Turn, ...]:
        turns: list[Turn] = []
        for ex in self.exchanges:
            if ex.answer is not None:
                turns += [Turn("user", ex.question), Turn("assistant", ex.answer.answer)]
        return tuple(turns)

    def last_answer(self) -> tuple[int, Answer | None]:
        for turn in range(len(self.exchanges) - 1, -1, -1):
            if self.exchanges[turn].answer is not None:
                return turn, self.exchanges[turn].answer
        return -1, None


def theme() -> gr.themes.Base:
    """System fonts only: nothing is fetched from a font CDN (intranets are often offline)."""
    return gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


def client_key(request: gr.Request | None) -> str:
    if request is None:
        return "local"
    state = getattr(request, "state", None)
    key = getattr(state, CLIENT_KEY, None) if state is not None else None
    if key:
        return str(key)
    client = getattr(request, "client", None)
    return f"ip:{getattr(client, 'host', '?')}"


def parse_filters(since: str | None, until: str | None, sources, languages, language: str) -> Filters:
    dates = {}
    for name, value in (("since", since), ("until", until)):
        value = (value or "").strip()
        if value and not parse_date(value):
            raise gr.Error(t(language, "bad_date", field=t(language, name), value=value))
        dates[name] = parse_date(value) if value else None
    return Filters(sources=tuple(sources or ()), languages=tuple(languages or ()), **dates)


def source_choices(assistant: Assistant) -> list[str]:
    try:
        stored = assistant.store.stored_articles()
    except KildeError:
        return []
    return sorted({s.meta.source for s in stored.values() if s.meta.source})


def build_app(assistant: Assistant, settings: Settings, limiter: RateLimiter | None = None,
              feedback: FeedbackLog | None = None, *, compact: bool = False) -> gr.Blocks:
    """The chat UI. `compact=True` is the embeddable widget: one column, no filters panel."""
    limiter = limiter or RateLimiter(settings.rate_limit_per_minute)
    feedback = feedback or FeedbackLog(settings.feedback_path)
    store = assistant.store
    lang0 = DEFAULT_LANGUAGE
    prefix = "kilde-widget" if compact else "kilde"

    def get_article(article_id: str):
        return store.get_article(article_id)

    with gr.Blocks(title="Kilde", analytics_enabled=False, fill_width=not compact) as demo:
        session = gr.State(None)
        with gr.Row(equal_height=False):
            header = gr.HTML(header_html(lang0, compact), elem_id=f"{prefix}-header", js_on_load=None)
            language = gr.Radio([("Norsk", "nb"), ("English", "en")], value=lang0, show_label=False,
                                container=False, elem_id=f"{prefix}-language", scale=0, min_width=180)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                conversation = gr.HTML(render.conversation_html([], lang0), label="conversation", elem_id=f"{prefix}-conversation",
                                       js_on_load=CLICK_JS, autoscroll=True,
                                       max_height=360 if compact else 560, min_height=120)
                with gr.Row(equal_height=True):
                    question = gr.Textbox(label=t(lang0, "question"), placeholder=t(lang0, "placeholder"),
                                          lines=1, max_lines=4, scale=5, elem_id=f"{prefix}-question",
                                          autofocus=not compact)
                    ask = gr.Button(t(lang0, "ask"), variant="primary", scale=1, min_width=80,
                                    elem_id=f"{prefix}-ask")
                with gr.Accordion(t(lang0, "filters"), open=False, visible=not compact) as filters_box:
                    with gr.Row():
                        since = gr.Textbox("", label=t(lang0, "since"), max_lines=1, elem_id=f"{prefix}-since")
                        until = gr.Textbox("", label=t(lang0, "until"), max_lines=1, elem_id=f"{prefix}-until")
                    sources = gr.Dropdown(source_choices(assistant), value=[], multiselect=True,
                                          label=t(lang0, "sources"), elem_id=f"{prefix}-sources")
                    languages = gr.CheckboxGroup([("Bokmål", "nb"), ("Nynorsk", "nn"), ("English", "en")],
                                                 value=[], label=t(lang0, "languages"),
                                                 elem_id=f"{prefix}-languages")
                with gr.Row(equal_height=True):
                    feedback_label = gr.HTML(fb_label_html(lang0), js_on_load=None, elem_id=f"{prefix}-feedback",
                                             visible=not compact)
                    thumbs_up = gr.Button(t(lang0, "thumbs_up"), size="sm", scale=0, min_width=90,
                                          elem_id=f"{prefix}-up")
                    thumbs_down = gr.Button(t(lang0, "thumbs_down"), size="sm", scale=0, min_width=90,
                                            elem_id=f"{prefix}-down")
                    new_chat = gr.Button(t(lang0, "new_chat"), size="sm", scale=0, min_width=90,
                                         elem_id=f"{prefix}-new")
                comment = gr.Textbox(label=t(lang0, "comment"), max_lines=3, visible=not compact,
                                     elem_id=f"{prefix}-comment")
                feedback_status = gr.HTML("", js_on_load=None, elem_id=f"{prefix}-feedback-status")
            with gr.Column(scale=2, min_width=280):
                sources_panel = gr.HTML(render.sources_html(None, 0, lang0, get_article),
                                        label=t(lang0, "sources_panel"), show_label=not compact, container=not compact,
                                        js_on_load=CLICK_JS, elem_id=f"{prefix}-sources-panel",
                                        max_height=300 if compact else 420)
                article_view = gr.HTML(render.article_html(None, None, lang0), label=t(lang0, "article_panel"),
                                       show_label=not compact, container=not compact, js_on_load=SCROLL_JS,
                                       elem_id=f"{prefix}-article", max_height=320 if compact else 520)
        answer_json = gr.JSON(visible=False, label="answer")

        # -- handlers --------------------------------------------------------------------------------

        def respond(question_text, since_date, until_date, source_names, article_languages, interface_language,
                    state, request: gr.Request):
            """Ask a question (history comes from the session); streams the conversation HTML."""
            lang = normalise_language(interface_language)
            state = state or ChatSession()
            filters = parse_filters(since_date, until_date, source_names, article_languages, lang)
            try:
                ask_request = assistant.validate(AskRequest(question=question_text or "", history=state.history(),
                                                            filters=filters))
            except KildeError as exc:
                raise gr.Error(str(exc)) from None
            retry_after = limiter.check(client_key(request))
            if retry_after is not None:
                raise gr.Error(t(lang, "rate_limited", limit=limiter.per_minute, seconds=retry_after))
            shown = [*state.exchanges, render.Exchange(ask_request.question)]
            yield (render.conversation_html(shown, lang), gr.skip(), gr.skip(), gr.skip(), "", state)
            partial = ""
            answer = None
            last_yield = 0.0
            try:
                for event in assistant.stream(ask_request):
                    if isinstance(event, Delta):
                        partial += event.text
                        now = time.monotonic()
                        if now - last_yield < STREAM_INTERVAL_S:
                            continue  # coalesce pieces that arrive faster than the screen needs them
                        last_yield = now
                        shown[-1] = render.Exchange(ask_request.question, partial=partial)
                        yield (render.conversation_html(shown, lang), gr.skip(), gr.skip(), gr.skip(),
                               gr.skip(), state)
                    else:
                        answer = event
            except KildeError as exc:
                raise gr.Error(str(exc)) from None
            state.exchanges.append(render.Exchange(ask_request.question, answer))
            state.filters.append(filters)
            turn = len(state.exchanges) - 1
            yield (render.conversation_html(state.exchanges, lang),
                   render.sources_html(answer, turn, lang, get_article),
                   render.article_html(None, None, lang), answer.to_dict(), gr.skip(), state)

        def open_citation(lang, state, evt: gr.EventData):
            lang = normalise_language(lang)
            data = getattr(evt, "_data", None) or {}
            try:
                turn, n = int(data.get("turn", -1)), int(data.get("n", -1))
            except (TypeError, ValueError):
                return gr.skip(), gr.skip()
            if not state or not 0 <= turn < len(state.exchanges) or state.exchanges[turn].answer is None:
                return gr.skip(), gr.skip()
            answer = state.exchanges[turn].answer
            citation = next((c for c in answer.citations if c.n == n), None)
            if citation is None:
                return gr.skip(), gr.skip()
            return (render.sources_html(answer, turn, lang, get_article),
                    render.article_html(get_article(citation.article_id), citation, lang))

        def give_feedback(rating: str):
            def handler(text, lang, state, request: gr.Request):
                lang = normalise_language(lang)
                turn, answer = state.last_answer() if state else (-1, None)
                if answer is None:
                    return gr.skip(), status_html(t(lang, "feedback_nothing"))
                try:
                    record = feedback_record(answer, state.history()[: 2 * turn], rating, text or "",
                                             state.filters[turn], client_key(request))
                    saved = feedback.append(record)
                except KildeError as exc:
                    raise gr.Error(str(exc)) from None
                return "", status_html(t(lang, "feedback_saved" if saved else "feedback_already"))
            return handler

        def reset(lang):
            lang = normalise_language(lang)
            return (render.conversation_html([], lang), render.sources_html(None, 0, lang, get_article),
                    render.article_html(None, None, lang), None, "", "", None)

        def relabel(lang, state):
            lang = normalise_language(lang)
            turn, answer = state.last_answer() if state else (-1, None)
            return (header_html(lang, compact), fb_label_html(lang),
                    gr.update(label=t(lang, "question"), placeholder=t(lang, "placeholder")),
                    gr.update(value=t(lang, "ask")), gr.update(label=t(lang, "filters")),
                    gr.update(label=t(lang, "since")), gr.update(label=t(lang, "until")),
                    gr.update(label=t(lang, "sources")), gr.update(label=t(lang, "languages")),
                    gr.update(value=t(lang, "thumbs_up")), gr.update(value=t(lang, "thumbs_down")),
                    gr.update(value=t(lang, "new_chat")), gr.update(label=t(lang, "comment")),
                    gr.update(label=t(lang, "sources_panel"),
                              value=render.sources_html(answer, max(turn, 0), lang, get_article)),
                    gr.update(label=t(lang, "article_panel")),
                    render.conversation_html(state.exchanges if state else [], lang))

        def initial_language(request: gr.Request):
            params = getattr(request, "query_params", None) or {}
            wanted = params.get("lang") if hasattr(params, "get") else None
            if wanted:
                return normalise_language(wanted)
            headers = getattr(request, "headers", None) or {}
            return from_accept_language(headers.get("accept-language") if hasattr(headers, "get") else None)

        # -- wiring ----------------------------------------------------------------------------------

        chat_inputs = [question, since, until, sources, languages, language, session]
        chat_outputs = [conversation, sources_panel, article_view, answer_json, question, session]
        gr.on([question.submit, ask.click], respond, inputs=chat_inputs, outputs=chat_outputs,
              api_name="widget_chat" if compact else "chat", show_progress="hidden",
              concurrency_limit=settings.ui_concurrency, concurrency_id="ask")
        for panel in (conversation, sources_panel):
            panel.click(open_citation, inputs=[language, session], outputs=[sources_panel, article_view],
                        api_visibility="private", show_progress="hidden", queue=False)
        thumbs_up.click(give_feedback("up"), inputs=[comment, language, session],
                        outputs=[comment, feedback_status], api_visibility="private", queue=False)
        thumbs_down.click(give_feedback("down"), inputs=[comment, language, session],
                          outputs=[comment, feedback_status], api_visibility="private", queue=False)
        new_chat.click(reset, inputs=[language],
                       outputs=[conversation, sources_panel, article_view, answer_json, question,
                                feedback_status, session], api_visibility="private", queue=False)
        language.change(relabel, inputs=[language, session],
                        outputs=[header, feedback_label, question, ask, filters_box, since, until, sources,
                                 languages, thumbs_up, thumbs_down, new_chat, comment, sources_panel,
                                 article_view, conversation],
                        api_visibility="private", queue=False, show_progress="hidden")
        demo.load(initial_language, inputs=None, outputs=[language], api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=settings.ui_concurrency)
    return demo


def header_html(language: str, compact: bool) -> str:
    if compact:
        return f'<div class="kilde-header kilde-compact"><strong>{render.esc(t(language, "title"))}</strong></div>'
    return (f'<div class="kilde-header"><h1>{render.esc(t(language, "title"))}</h1>'
            f'<p>{render.esc(t(language, "intro"))}</p></div>')


def fb_label_html(language: str) -> str:
    return f'<span class="kilde-feedback-label">{render.esc(t(language, "feedback"))}</span>'


def status_html(text: str) -> str:
    return f'<span class="kilde-status" role="status">{render.esc(text)}</span>'
