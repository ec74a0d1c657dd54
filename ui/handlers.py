"""What the chat does when a person acts: ask, open a citation, give feedback, start over, switch
language. Plain methods over plain values, so they are tested without building the Blocks; `ui/app.py`
lays out the components and wires them to these."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import gradio as gr

from assistant.answering.assistant import Assistant
from assistant.answering.context import AskRequest, Delta
from assistant.core.errors import (
    BadInputError,
    FilterMatchesNothingError,
    KildeError,
    NotTextError,
    TextTooLongError,
    UnusableQuestionError,
)
from assistant.core.types import Answer, Filters, Turn
from assistant.indexes.storage import StorageError
from ui import render
from ui.feedback import FeedbackLog, feedback_record
from ui.i18n import normalise_language, t
from ui.limits import RateLimiter
from ui.security import client_key

STREAM_INTERVAL_S = 0.05  # at most ~20 screen updates a second while an answer streams
# A session keeps its latest exchanges only: each holds its answer with the passages retrieved for it, and the
# whole conversation is sent again with every update. A follow-up reads far fewer turns than this.
MAX_EXCHANGES = 50
log = logging.getLogger("kilde.ui")


def refused(message: str) -> gr.Error:
    """What the person sent cannot be used (a bad date, an empty question, too many questions): the page
    says why, the server log gets one line. Gradio prints a traceback for any other error."""
    log.info("refused: %s", message)
    return gr.Error(message, print_exception=False)


@dataclass
class ChatSession:
    """One browser session's conversation. Held in gr.State, never at module level."""

    exchanges: list[render.Exchange] = field(default_factory=list)
    filters: list[Filters] = field(default_factory=list)
    opened: tuple[int, int] | None = None  # (turn, n) of the citation the article panel shows
    dropped: int = 0  # earlier exchanges no longer kept
    # "New conversation" was clicked: an answer still streaming into this session stops and shows nothing more
    # (it would put the old conversation back, and the next question would be read as its follow-up).
    ended: bool = False

    def add(self, exchange: render.Exchange, filters: Filters) -> None:
        """Keep an answered exchange; past MAX_EXCHANGES, the oldest goes (turns count from the oldest kept)."""
        self.exchanges.append(exchange)
        self.filters.append(filters)
        extra = len(self.exchanges) - MAX_EXCHANGES
        if extra > 0:
            del self.exchanges[:extra], self.filters[:extra]
            self.dropped += extra
        self.opened = None

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


def parse_filters(since: str | None, until: str | None, sources, languages, language: str) -> Filters:
    try:
        return Filters.parse(since, until, sources, languages)
    except BadInputError as exc:
        if exc.source == "languages":  # a code no checkbox offers: a call made without the page
            raise refused(str(exc)) from None
        value = (since if exc.source == "since" else until) or ""
        try:
            Filters.parse(**{exc.source: value})
        except BadInputError:
            raise refused(
                t(language, "bad_date", field=t(language, exc.source), value=value.strip())
            ) from None
        # Both are dates: the range ends before it starts.
        raise refused(
            t(
                language,
                "bad_range",
                field=t(language, "until"),
                until=until.strip(),
                since=since.strip(),
            )
        ) from None


def question_refusal(exc: UnusableQuestionError, language: str) -> str:
    """A question that cannot be asked, said in the interface `language`; in English, the refusal's own words."""
    if language == "en":
        return str(exc)
    return t(language, f"question_{exc.kind}", length=exc.length, limit=exc.limit)


def filter_refusal(exc: FilterMatchesNothingError, language: str) -> str:
    """A source or language filter no article has, said in the interface `language`, naming the values the
    archive holds, as a date that cannot be read is (`parse_filters`). In English, the refusal's own words."""
    if language == "en":
        return str(exc)
    key = "unknown_source" if exc.source == "source filter" else "unknown_language"
    if not exc.known:
        return t(language, f"{key}_none", value=exc.value)
    listed = ", ".join(repr(name) for name in exc.known)
    if exc.more:
        listed = t(language, "and_more", listed=listed, count=exc.more)
    return t(language, key, value=exc.value, listed=listed)


# The fields of the chat a refusal names, by the name core's errors give them (their `source`).
FIELD_NAMES = {"question": "field_question", "comment": "field_comment", "source filter": "field_sources"}


def refusal(exc: BadInputError, language: str) -> str:
    """What the person sent, refused, said in the interface `language`: each refusal the chat's own page can
    bring about carries why (core.errors), so none is left in English on a Norwegian page. In English, and for a
    refusal only a call made without the page can bring about, the refusal's own words."""
    if language == "en":
        return str(exc)
    if isinstance(exc, UnusableQuestionError):
        return question_refusal(exc, language)
    if isinstance(exc, FilterMatchesNothingError):
        return filter_refusal(exc, language)
    if isinstance(exc, NotTextError) and exc.source in FIELD_NAMES:
        return t(language, "not_text", field=t(language, FIELD_NAMES[exc.source]))
    if isinstance(exc, TextTooLongError) and exc.source == "comment":
        return t(language, "comment_too_long", length=exc.length, limit=exc.limit)
    return str(exc)


LANGUAGE_LABELS = {"nb": "Bokmål", "nn": "Nynorsk", "en": "English"}


def filter_choices(assistant: Assistant) -> tuple[list[str], list[tuple[str, str]]]:
    """The sources and the article languages the archive holds now, so no filter can only ever come back empty
    and an article ingested while the server runs can be chosen on the next page load."""
    try:
        sources, languages = assistant.retriever.filter_values()
    except KildeError:
        return [], []
    return sources, [(label, code) for code, label in LANGUAGE_LABELS.items() if code in languages]


_END = object()


def with_ticks(events: Iterator, every: float) -> Iterator:
    """`events`, read in a thread of their own, with a None whenever `every` seconds pass without one: a caller
    that holds back pieces to pace its updates can show them while the source pauses (a model may stop for
    seconds mid-answer). An error of `events` is raised here. Closed, it has the reader close `events` at their
    next item, as a caller that stopped reading them would."""
    box: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def read() -> None:
        try:
            for event in events:
                if stop.is_set():
                    break
                box.put((event, None))
        except BaseException as exc:  # handed to the caller, whose thread raises it
            box.put((_END, exc))
            return
        finally:
            events.close()
        box.put((_END, None))

    threading.Thread(target=contextvars.copy_context().run, args=(read,), daemon=True).start()
    try:
        while True:
            try:
                event, error = box.get(timeout=every)
            except queue.Empty:
                yield None
                continue
            if event is _END:
                if error is not None:
                    raise error
                return
            yield event
    finally:
        stop.set()


class ChatHandlers:
    """The chat's event handlers over the objects the server shares (assistant, rate limiter, feedback log);
    per-user state arrives as a `ChatSession` argument and is never kept here."""

    def __init__(
        self, assistant: Assistant, limiter: RateLimiter, feedback: FeedbackLog, *, compact: bool = False
    ):
        self.assistant = assistant
        self.limiter = limiter
        self.feedback = feedback
        self.compact = compact

    def get_article(self, article_id: str):
        return self.assistant.store.get_article(article_id)

    def article_html(self, citation, lang: str) -> str:
        """The cited article, its quote marked; in the widget the mark has no id, as a host page may hold two."""
        mark_id = None if self.compact else "kilde-hl"
        return render.article_html(self.get_article(citation.article_id), citation, lang, mark_id)

    def respond(
        self,
        question_text,
        since_date,
        until_date,
        source_names,
        article_languages,
        interface_language,
        state,
        request: gr.Request,
    ):
        """Ask a question (history comes from the session); streams the conversation HTML."""
        lang = normalise_language(interface_language)
        state = state or ChatSession()
        filters = parse_filters(since_date, until_date, source_names, article_languages, lang)
        try:
            ask_request = self.assistant.validate(
                AskRequest(question=question_text or "", history=state.history(), filters=filters)
            )
        except BadInputError as exc:
            raise refused(refusal(exc, lang)) from None
        except KildeError as exc:
            raise gr.Error(str(exc)) from None
        retry_after = self.limiter.check(client_key(request))
        if retry_after is not None:
            raise refused(t(lang, "rate_limited", limit=self.limiter.per_minute, seconds=retry_after))
        shown = [*state.exchanges, render.Exchange(ask_request.question)]
        yield (
            render.conversation_html(shown, lang, state.dropped),
            gr.skip(),
            gr.skip(),
            gr.skip(),
            "",
            state,
        )
        partial = ""
        answer = None
        last_yield = 0.0
        shown_partial = ""
        # A tick (None) when the model pauses: the pieces held back to pace the updates are shown then.
        events = with_ticks(self.assistant.stream(ask_request), STREAM_INTERVAL_S)
        try:
            for event in events:
                if state.ended:
                    yield self.ended_view(lang)
                    return
                if event is None or isinstance(event, Delta):
                    partial += event.text if event else ""
                    now = time.monotonic()
                    if partial == shown_partial or now - last_yield < STREAM_INTERVAL_S:
                        continue  # coalesce pieces that arrive faster than the screen needs them
                    last_yield, shown_partial = now, partial
                    shown[-1] = render.Exchange(ask_request.question, partial=partial)
                    yield (
                        render.conversation_html(shown, lang, state.dropped),
                        gr.skip(),
                        gr.skip(),
                        gr.skip(),
                        gr.skip(),
                        state,
                    )
                else:
                    answer = event
        except BadInputError as exc:
            # A source or language filter no article has, or text that is no text: refused in the page's language,
            # not a fault.
            raise refused(refusal(exc, lang)) from None
        except KildeError as exc:
            raise gr.Error(str(exc)) from None
        finally:
            events.close()  # the model's stream too (at its next piece), when this answer stops early
        if state.ended:
            yield self.ended_view(lang)
            return
        state.add(render.Exchange(ask_request.question, answer), filters)
        turn = len(state.exchanges) - 1
        yield (
            render.conversation_html(state.exchanges, lang, state.dropped),
            render.sources_html(answer, turn, lang, self.get_article),
            render.article_html(None, None, lang),
            answer.to_dict(),
            gr.skip(),
            state,
        )

    def ended_view(self, lang: str) -> tuple:
        """`respond`'s outputs once its session was ended: the empty conversation `reset` showed, no session,
        so the stream's last update is that, not the old conversation's."""
        return (*self.empty_panels(lang), None, gr.skip(), None)

    def empty_panels(self, lang: str) -> tuple[str, str, str]:
        """The conversation, sources and article panels of a conversation with nothing in it."""
        return (
            render.conversation_html([], lang),
            render.sources_html(None, 0, lang, self.get_article),
            render.article_html(None, None, lang),
        )

    def open_citation(self, lang, state, evt: gr.EventData):
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
        state.opened = (turn, n)  # gr.State keeps this object: the language switch re-renders the article
        return (
            render.sources_html(answer, turn, lang, self.get_article),
            self.article_html(citation, lang),
        )

    def give_feedback(self, rating: str):
        def handler(text, lang, state, request: gr.Request):
            lang = normalise_language(lang)
            turn, answer = state.last_answer() if state else (-1, None)
            if answer is None:
                return gr.skip(), status_html(t(lang, "feedback_nothing"))
            try:
                record = feedback_record(
                    answer,
                    state.history()[: 2 * turn],
                    rating,
                    text or "",
                    state.filters[turn],
                    client_key(request),
                )
                saved = self.feedback.append(record)  # one vote per answer and client
            except BadInputError as exc:
                # A comment too long, or one that is not text: said on the feedback's own status line, the
                # comment kept. Raised, it showed "Error" alone (Gradio shows no message for an event off
                # the queue).
                log.info("refused: %s", exc)
                return gr.skip(), status_html(refusal(exc, lang))
            except StorageError:
                # The log cannot be written (its cause and path are in the server's log): said on the status
                # line in the page's language, the comment kept. Raised, the page showed "Error" and the server's
                # English line.
                return gr.skip(), status_html(t(lang, "feedback_not_saved"))
            # Any other fault Kilde names, as every other handler of the chat says it.
            except KildeError as exc:
                raise gr.Error(str(exc)) from None
            return "", status_html(t(lang, "feedback_saved" if saved else "feedback_already"))

        return handler

    def refresh_filters(self):
        """The filter choices as the archive is now (on each page load): the page itself is built once."""
        sources, languages = filter_choices(self.assistant)
        return gr.update(choices=sources), gr.update(choices=languages)

    def reset(self, lang, state):
        """A new conversation: empty panels, no feedback status, no session; an answer still streaming into
        the old session ends there. The question box is left alone: a reply that lands after the visitor typed
        the next question would otherwise wipe it."""
        lang = normalise_language(lang)
        if state:
            state.ended = True
        return (*self.empty_panels(lang), None, "", None)

    def opened_article(self, state, lang: str) -> str:
        """The article panel for the citation the session has open, or its placeholder."""
        if state and state.opened:
            turn, n = state.opened
            answer = state.exchanges[turn].answer if turn < len(state.exchanges) else None
            citation = next((c for c in answer.citations if c.n == n), None) if answer else None
            if citation is not None:
                return self.article_html(citation, lang)
        return render.article_html(None, None, lang)

    def relabel(self, lang, state):
        """Every text of the page in `lang`, in RELABELLED order (the panels keep what they show)."""
        lang = normalise_language(lang)
        texts = interface_text(lang, self.compact)
        turn, answer = state.last_answer() if state else (-1, None)
        texts["sources_panel"]["value"] = render.sources_html(answer, max(turn, 0), lang, self.get_article)
        texts["article_view"]["value"] = self.opened_article(state, lang)
        texts["conversation"]["value"] = (
            render.conversation_html(state.exchanges, lang, state.dropped)
            if state
            else render.conversation_html([], lang)
        )
        return tuple(gr.update(**texts[name]) for name in RELABELLED)


# The components whose texts follow the interface language: `relabel` returns them in this order, and
# ui/page_language.py serves the page with their texts in the visitor's language.
RELABELLED = (
    "header",
    "feedback_label",
    "question",
    "ask",
    "filters_box",
    "since",
    "until",
    "sources",
    "languages",
    "thumbs_up",
    "thumbs_down",
    "new_chat",
    "comment",
    "sources_panel",
    "article_view",
    "conversation",
)


def interface_text(lang: str, compact: bool) -> dict[str, dict[str, str]]:
    """{component name: {prop: text}} of an empty page in `lang` (labels, placeholders, button texts)."""
    return {
        "header": {"value": header_html(lang, compact)},
        "feedback_label": {"value": fb_label_html(lang)},
        "question": {
            "label": t(lang, "question"),
            "placeholder": t(lang, "placeholder_short" if compact else "placeholder"),
        },
        "ask": {"value": t(lang, "ask")},
        "filters_box": {"label": t(lang, "filters")},
        "since": {"label": t(lang, "since")},
        "until": {"label": t(lang, "until")},
        "sources": {"label": t(lang, "sources")},
        "languages": {"label": t(lang, "languages")},
        "thumbs_up": {"value": t(lang, "thumbs_up")},
        "thumbs_down": {"value": t(lang, "thumbs_down")},
        "new_chat": {"value": t(lang, "new_chat")},
        "comment": {"label": t(lang, "comment")},
        "sources_panel": {
            "label": t(lang, "sources_panel"),
            "value": render.sources_html(None, 0, lang, None),
        },
        "article_view": {"label": t(lang, "article_panel"), "value": render.article_html(None, None, lang)},
        "conversation": {"value": render.conversation_html([], lang)},
    }


def header_html(language: str, compact: bool) -> str:
    if compact:
        # The widget is narrow: its name only (the empty conversation says what it does).
        return f'<div class="kilde-header kilde-compact" title="{render.esc(t(language, "title"))}"><strong>{render.esc(t(language, "kilde"))}</strong></div>'
    return (
        f'<div class="kilde-header"><h1>{render.esc(t(language, "title"))}</h1>'
        f"<p>{render.esc(t(language, 'intro'))}</p></div>"
    )


def fb_label_html(language: str) -> str:
    return f'<span class="kilde-feedback-label">{render.esc(t(language, "feedback"))}</span>'


def status_html(text: str) -> str:
    return f'<span class="kilde-status" role="status">{render.esc(text)}</span>'
