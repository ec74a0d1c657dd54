"""`build_app(assistant, settings) -> gr.Blocks`: the chat's layout, wired to `ui.handlers.ChatHandlers`.

No retrieval or prompting here. Per-user state (the conversation) lives in a `gr.State`, one per browser
session; the only shared objects are the ones passed in (assistant, rate limiter, feedback log).
Everything shown is rendered by ui/render.py as escaped text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from assistant.answering.assistant import Assistant
from assistant.core.config import Settings
from ui import render
from ui.feedback import FeedbackLog
from ui.handlers import (
    RELABELLED,
    ChatHandlers,
    fb_label_html,
    filter_choices,
    header_html,
    interface_text,
)
from ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from ui.limits import RateLimiter
from ui.page_language import LocalisedBlocks

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
# The nearest ancestor that scrolls (Gradio's box for a gr.HTML with max_height, or our .kilde-scroll).
SCROLLER_JS = """
const scroller = (el) => {
  for (let node = el.parentElement; node; node = node.parentElement) {
    const overflow = getComputedStyle(node).overflowY;
    if (overflow === 'auto' || overflow === 'scroll') return node;
  }
  return null;
};
"""
# Each time the conversation changes (a question, each streamed piece, the answer), show its end. Only the
# conversation box scrolls: never the page, nor the host page around the widget's iframe.
CONVERSATION_JS = (
    CLICK_JS
    + SCROLLER_JS
    + """
const toEnd = () => {
  const box = scroller(element);
  if (box) box.scrollTop = box.scrollHeight;
};
new MutationObserver(() => requestAnimationFrame(toEnd)).observe(element, {childList: true, subtree: true, characterData: true});
"""
)
# When a new article is shown, scroll its text (and nothing else) so the highlighted quote is in view.
ARTICLE_JS = """
const showQuote = () => {
  const mark = element.querySelector('mark.kilde-quote');
  const box = mark && mark.closest('.kilde-scroll');
  if (!box) return;
  const offset = mark.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
  box.scrollTop = Math.max(0, offset - box.clientHeight / 4);
};
new MutationObserver(() => requestAnimationFrame(showQuote)).observe(element, {childList: true, subtree: true});
"""

# The language the page is in, for screen readers and the browser: on the page's own `<html>` (Gradio sets it
# from the browser's locale, whatever language the page is served in, and never follows the switch), or, in a
# host page's `<gradio-app src=…>`, on that element only: the host page's own language is the host's.
# Gradio's radio is a plain block of radios: make it a radio group named in the page's language (NAMES).
# A host page may hold two widgets (an event's script is not told which app it ran in): each app's language is
# read from its own radio.
# In a host page, STARTED_EVENT tells Kilde's `/gradio.js` (ui/widget.py) that Gradio has set up its i18n, which
# writes the browser's locale on the host's `<html lang>`: from now on the host's own lang changes stand.
STARTED_EVENT = "kilde-widget-started"
PAGE_LANG_JS = """
(lang) => {
  const names = NAMES;
  for (const radio of document.querySelectorAll(SWITCH)) {
    const checked = radio.querySelector('input:checked');
    const own = checked ? checked.value : lang;
    radio.setAttribute('role', 'radiogroup');
    radio.setAttribute('aria-label', names[own] || names[DEFAULT]);
    const app = radio.closest('gradio-app');
    const embedded = app && app.hasAttribute('src');
    (embedded ? app : document.documentElement).setAttribute('lang', own);
    if (embedded) app.dispatchEvent(new CustomEvent('STARTED', {bubbles: true}));
  }
  return lang;
}
""".replace("STARTED", STARTED_EVENT)

# The question box takes its direction from what is typed, as the conversation's texts do (`dir="auto"`,
# ui/render.py): Gradio's textbox is `dir="ltr"` unless built right to left, and an Arabic or Hebrew question was
# typed left to right. Gradio may render the box again (or set `dir` again) on any update, so each app's root is
# watched, not the box once. A host page may hold two widgets: each app is watched once.
QUESTION_DIRECTION_JS = """
() => {
  const areas = QUESTION + ' textarea';
  const follow = (root) => {
    for (const area of root.querySelectorAll(areas)) {
      if (area.getAttribute('dir') !== 'auto') area.setAttribute('dir', 'auto');
    }
  };
  for (const area of document.querySelectorAll(areas)) {
    const root = area.closest('gradio-app') || document.body;
    if (root.kildeDirection) continue;
    root.kildeDirection = new MutationObserver(() => follow(root));
    root.kildeDirection.observe(root, {childList: true, subtree: true, attributes: true, attributeFilter: ['dir']});
    follow(root);
  }
}
"""

# The widget in an `<iframe>` cannot see the page around it, so its URL names its scheme (`?__theme=light`, Gradio's
# `dark` class on `<body>`), read once. A host page that switches its scheme tells the frame, without reloading it
# (which would start a new conversation): `frame.contentWindow.postMessage({kilde: 'color-scheme', scheme: 'dark'},
# kildeOrigin)`. Only the page framing the widget is heard (frame-ancestors names who may frame it), and a message
# can do nothing but choose light or dark. Not in a `<gradio-app>` embed, whose window is the host page's.
FRAME_SCHEME_MESSAGE = "color-scheme"
FRAME_SCHEME_JS = """
() => {
  if (window.parent === window || document.querySelector('gradio-app[src]') || window.kildeFrameScheme) return;
  window.kildeFrameScheme = true;
  window.addEventListener('message', (event) => {
    const data = event.data;
    if (event.source !== window.parent || !data || data.kilde !== 'MESSAGE') return;
    if (data.scheme !== 'light' && data.scheme !== 'dark') return;
    document.body.classList.toggle('dark', data.scheme === 'dark');
  });
}
""".replace("MESSAGE", FRAME_SCHEME_MESSAGE)


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

    def hook(part: str) -> dict:
        """A part's handle for styles, scripts and tests: an id in the chat, which is the whole page; a class in
        the widget, since one host page may hold two widgets and an id must name one element of the page."""
        return {"elem_classes": [f"{prefix}-{part}"]} if compact else {"elem_id": f"{prefix}-{part}"}

    source_choices, language_choices = filter_choices(assistant)

    with LocalisedBlocks(title="Kilde", analytics_enabled=False, fill_width=not compact) as demo:
        session = gr.State(None)
        with gr.Row(equal_height=False, **hook("top")):
            header = gr.HTML(header_html(lang0, compact), **hook("header"), js_on_load=None)
            language = gr.Radio(
                [("Norsk", "nb"), ("English", "en")],
                value=lang0,
                show_label=False,
                container=False,
                **hook("language"),
                scale=0,
                min_width=150,
            )
            # Apart from the feedback buttons: starting over is not a rating of the answer.
            new_chat = gr.Button(t(lang0, "new_chat"), size="sm", scale=0, min_width=150, **hook("new"))
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                conversation = gr.HTML(
                    render.conversation_html([], lang0),
                    label="conversation",
                    **hook("conversation"),
                    js_on_load=CONVERSATION_JS,
                    max_height=185 if compact else 560,
                    min_height=100 if compact else 120,
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label=t(lang0, "question"),
                        placeholder=t(lang0, "placeholder_short" if compact else "placeholder"),
                        show_label=not compact,
                        lines=1,
                        max_lines=2 if compact else 4,
                        scale=5,
                        min_width=120,
                        **hook("question"),
                        autofocus=not compact,
                    )
                    ask = gr.Button(t(lang0, "ask"), variant="primary", scale=1, min_width=70, **hook("ask"))
                with gr.Accordion(t(lang0, "filters"), open=False, visible=not compact) as filters_box:
                    with gr.Row():
                        since = gr.Textbox("", label=t(lang0, "since"), max_lines=1, **hook("since"))
                        until = gr.Textbox("", label=t(lang0, "until"), max_lines=1, **hook("until"))
                    sources = gr.Dropdown(
                        source_choices,
                        value=[],
                        multiselect=True,
                        label=t(lang0, "sources"),
                        **hook("sources"),
                    )
                    languages = gr.CheckboxGroup(
                        language_choices,
                        value=[],
                        label=t(lang0, "languages"),
                        **hook("languages"),
                    )
                with gr.Row(equal_height=True, **hook("feedback-row")):
                    feedback_label = gr.HTML(
                        fb_label_html(lang0),
                        js_on_load=None,
                        **hook("feedback"),
                        visible=not compact,
                    )
                    thumbs_up = gr.Button(
                        t(lang0, "thumbs_up"), size="sm", scale=0, min_width=90, **hook("up")
                    )
                    thumbs_down = gr.Button(
                        t(lang0, "thumbs_down"), size="sm", scale=0, min_width=90, **hook("down")
                    )
                    feedback_status = gr.HTML("", js_on_load=None, **hook("feedback-status"))
                comment = gr.Textbox(
                    label=t(lang0, "comment"), max_lines=3, visible=not compact, **hook("comment")
                )
            with gr.Column(scale=2, min_width=280):
                # Our own headings ("Cited passages", "Full article") and scroll boxes (kilde.css): a
                # floating Gradio label would cover the first line of a scrolled panel.
                sources_panel = gr.HTML(
                    render.sources_html(None, 0, lang0, get_article),
                    label=t(lang0, "sources_panel"),
                    show_label=False,
                    container=not compact,
                    js_on_load=CLICK_JS,
                    **hook("sources-panel"),
                )
                article_view = gr.HTML(
                    render.article_html(None, None, lang0),
                    label=t(lang0, "article_panel"),
                    show_label=False,
                    container=not compact,
                    js_on_load=ARTICLE_JS,
                    **hook("article"),
                )
        answer_json = gr.JSON(visible=False, label="answer")

        # -- wiring ----------------------------------------------------------------------------------

        chat_inputs = [question, since, until, sources, languages, language, session]
        chat_outputs = [conversation, sources_panel, article_view, answer_json, question, session]
        # A question sent while an answer streams is asked once that answer is finished, with it in the
        # history (Gradio's default, "once", dropped it without a word).
        gr.on(
            [question.submit, ask.click],
            handlers.respond,
            inputs=chat_inputs,
            outputs=chat_outputs,
            api_name="widget_chat" if compact else "chat",
            show_progress="hidden",
            trigger_mode="always_last",
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
        for button, vote in ((thumbs_up, "up"), (thumbs_down, "down")):
            button.click(
                handlers.give_feedback(vote),
                inputs=[comment, language, session],
                outputs=[comment, feedback_status],
                api_visibility="private",
                queue=False,
            )
        new_chat.click(
            handlers.reset,
            inputs=[language, session],
            outputs=[
                conversation,
                sources_panel,
                article_view,
                answer_json,
                feedback_status,
                session,
            ],
            api_visibility="private",
            queue=False,
        )
        if not compact:  # the widget shows no filters
            demo.load(
                handlers.refresh_filters,
                outputs=[sources, languages],
                api_visibility="private",
                queue=False,
                show_progress="hidden",
            )
        named = {
            "header": header,
            "feedback_label": feedback_label,
            "question": question,
            "ask": ask,
            "filters_box": filters_box,
            "since": since,
            "until": until,
            "sources": sources,
            "languages": languages,
            "thumbs_up": thumbs_up,
            "thumbs_down": thumbs_down,
            "new_chat": new_chat,
            "comment": comment,
            "sources_panel": sources_panel,
            "article_view": article_view,
            "conversation": conversation,
        }
        language.change(
            handlers.relabel,
            inputs=[language, session],
            outputs=[named[name] for name in RELABELLED],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        names = {lang: t(lang, "interface_language") for lang in LANGUAGES}
        page_lang = (
            PAGE_LANG_JS.replace("SWITCH", json.dumps(f"{'.' if compact else '#'}{prefix}-language"))
            .replace("NAMES", json.dumps(names))
            .replace("DEFAULT", json.dumps(DEFAULT_LANGUAGE))
        )
        for event in (demo.load, language.change):
            event(None, inputs=[language], js=page_lang, api_visibility="private", queue=False)
        demo.load(
            None,
            js=QUESTION_DIRECTION_JS.replace(
                "QUESTION", json.dumps(f"{'.' if compact else '#'}{prefix}-question")
            ),
            api_visibility="private",
            queue=False,
        )
        if compact:
            demo.load(None, js=FRAME_SCHEME_JS, api_visibility="private", queue=False)
    # The page arrives in the visitor's language (ui/page_language.py): no Norwegian first, then English.
    for lang in LANGUAGES:
        texts = interface_text(lang, compact)
        texts["language"] = {"value": lang}
        named["language"] = language
        demo.page_text[lang] = {named[name]._id: props for name, props in texts.items()}
    demo.queue(default_concurrency_limit=settings.ui_concurrency)
    return demo
