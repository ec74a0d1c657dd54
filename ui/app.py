"""`build_app(assistant, settings) -> gr.Blocks`: the chat's layout, wired to `ui.handlers.ChatHandlers`.

No retrieval or prompting here. Per-user state (the conversation) lives in a `gr.State`, one per browser
session; the only shared objects are the ones passed in (assistant, rate limiter, feedback log).
Everything shown is rendered by ui/render.py as escaped text.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from assistant.answering.assistant import Assistant
from assistant.core.config import Settings
from ui import render
from ui.feedback import FeedbackLog
from ui.handlers import ChatHandlers, fb_label_html, header_html, language_choices, source_choices
from ui.i18n import DEFAULT_LANGUAGE, t
from ui.limits import RateLimiter

STATIC = Path(__file__).with_name("static")
CSS_PATH = STATIC / "kilde.css"

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


def theme() -> gr.themes.Base:
    """System fonts only: nothing is fetched from a font CDN (intranets are often offline)."""
    return gr.themes.Default(
        font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    )


def build_app(
    assistant: Assistant,
    settings: Settings,
    limiter: RateLimiter,
    feedback: FeedbackLog,
    *,
    compact: bool = False,
) -> gr.Blocks:
    """The chat UI. `compact=True` is the embeddable widget: one column, no filters panel. The rate limiter
    and feedback log are the server's (`ui.server.create_app`), shared by the chat, the widget and the API."""
    handlers = ChatHandlers(assistant, limiter, feedback, compact=compact)
    get_article = handlers.get_article
    lang0 = DEFAULT_LANGUAGE
    prefix = "kilde-widget" if compact else "kilde"

    with gr.Blocks(title="Kilde", analytics_enabled=False, fill_width=not compact) as demo:
        session = gr.State(None)
        with gr.Row(equal_height=False):
            header = gr.HTML(header_html(lang0, compact), elem_id=f"{prefix}-header", js_on_load=None)
            language = gr.Radio(
                [("Norsk", "nb"), ("English", "en")],
                value=lang0,
                show_label=False,
                container=False,
                elem_id=f"{prefix}-language",
                scale=0,
                min_width=180,
            )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                conversation = gr.HTML(
                    render.conversation_html([], lang0),
                    label="conversation",
                    elem_id=f"{prefix}-conversation",
                    js_on_load=CLICK_JS,
                    autoscroll=True,
                    max_height=360 if compact else 560,
                    min_height=120,
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label=t(lang0, "question"),
                        placeholder=t(lang0, "placeholder"),
                        lines=1,
                        max_lines=4,
                        scale=5,
                        elem_id=f"{prefix}-question",
                        autofocus=not compact,
                    )
                    ask = gr.Button(
                        t(lang0, "ask"), variant="primary", scale=1, min_width=80, elem_id=f"{prefix}-ask"
                    )
                with gr.Accordion(t(lang0, "filters"), open=False, visible=not compact) as filters_box:
                    with gr.Row():
                        since = gr.Textbox(
                            "", label=t(lang0, "since"), max_lines=1, elem_id=f"{prefix}-since"
                        )
                        until = gr.Textbox(
                            "", label=t(lang0, "until"), max_lines=1, elem_id=f"{prefix}-until"
                        )
                    sources = gr.Dropdown(
                        source_choices(assistant),
                        value=[],
                        multiselect=True,
                        label=t(lang0, "sources"),
                        elem_id=f"{prefix}-sources",
                    )
                    languages = gr.CheckboxGroup(
                        language_choices(assistant),
                        value=[],
                        label=t(lang0, "languages"),
                        elem_id=f"{prefix}-languages",
                    )
                with gr.Row(equal_height=True):
                    feedback_label = gr.HTML(
                        fb_label_html(lang0),
                        js_on_load=None,
                        elem_id=f"{prefix}-feedback",
                        visible=not compact,
                    )
                    thumbs_up = gr.Button(
                        t(lang0, "thumbs_up"), size="sm", scale=0, min_width=90, elem_id=f"{prefix}-up"
                    )
                    thumbs_down = gr.Button(
                        t(lang0, "thumbs_down"), size="sm", scale=0, min_width=90, elem_id=f"{prefix}-down"
                    )
                    new_chat = gr.Button(
                        t(lang0, "new_chat"), size="sm", scale=0, min_width=90, elem_id=f"{prefix}-new"
                    )
                comment = gr.Textbox(
                    label=t(lang0, "comment"), max_lines=3, visible=not compact, elem_id=f"{prefix}-comment"
                )
                feedback_status = gr.HTML("", js_on_load=None, elem_id=f"{prefix}-feedback-status")
            with gr.Column(scale=2, min_width=280):
                sources_panel = gr.HTML(
                    render.sources_html(None, 0, lang0, get_article),
                    label=t(lang0, "sources_panel"),
                    show_label=not compact,
                    container=not compact,
                    js_on_load=CLICK_JS,
                    elem_id=f"{prefix}-sources-panel",
                    max_height=300 if compact else 420,
                )
                article_view = gr.HTML(
                    render.article_html(None, None, lang0),
                    label=t(lang0, "article_panel"),
                    show_label=not compact,
                    container=not compact,
                    js_on_load=SCROLL_JS,
                    elem_id=f"{prefix}-article",
                    max_height=320 if compact else 520,
                )
        answer_json = gr.JSON(visible=False, label="answer")

        # -- wiring ----------------------------------------------------------------------------------

        chat_inputs = [question, since, until, sources, languages, language, session]
        chat_outputs = [conversation, sources_panel, article_view, answer_json, question, session]
        gr.on(
            [question.submit, ask.click],
            handlers.respond,
            inputs=chat_inputs,
            outputs=chat_outputs,
            api_name="widget_chat" if compact else "chat",
            show_progress="hidden",
            concurrency_limit=settings.ui_concurrency,
            concurrency_id="ask",
        )
        for panel in (conversation, sources_panel):
            panel.click(
                handlers.open_citation,
                inputs=[language, session],
                outputs=[sources_panel, article_view],
                api_visibility="private",
                show_progress="hidden",
                queue=False,
            )
        thumbs_up.click(
            handlers.give_feedback("up"),
            inputs=[comment, language, session],
            outputs=[comment, feedback_status],
            api_visibility="private",
            queue=False,
        )
        thumbs_down.click(
            handlers.give_feedback("down"),
            inputs=[comment, language, session],
            outputs=[comment, feedback_status],
            api_visibility="private",
            queue=False,
        )
        new_chat.click(
            handlers.reset,
            inputs=[language],
            outputs=[
                conversation,
                sources_panel,
                article_view,
                answer_json,
                question,
                feedback_status,
                session,
            ],
            api_visibility="private",
            queue=False,
        )
        language.change(
            handlers.relabel,
            inputs=[language, session],
            outputs=[
                header,
                feedback_label,
                question,
                ask,
                filters_box,
                since,
                until,
                sources,
                languages,
                thumbs_up,
                thumbs_down,
                new_chat,
                comment,
                sources_panel,
                article_view,
                conversation,
            ],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        demo.load(
            handlers.initial_language, inputs=None, outputs=[language], api_visibility="private", queue=False
        )
    demo.queue(default_concurrency_limit=settings.ui_concurrency)
    return demo
