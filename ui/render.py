"""HTML for the chat, the sources panel and the article view.

Everything that comes from the archive or from an answer goes through `html.escape` and is shown as
text: no Markdown, no links built from article data, no attributes filled with article text. The only
markup is ours: `[n]` markers become buttons carrying two integers, and the cited quote is wrapped in
`<mark>` at the citation's exact character offsets into the article text, with the reader's answer span
inside it in `<strong>`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.answering.answers import unsupported_notice
from assistant.answering.small_talk import BACKEND as SMALL_TALK
from assistant.core.types import Answer, Article, Citation
from ui.i18n import quoted_original_notice, t

MARKER = re.compile(r"\[(\d{1,3})\]")
CONTEXT_CHARS = 300  # passage shown around a quote when its chunk is unknown


def esc(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


@dataclass(frozen=True)
class Exchange:
    """One question and its answer (None while it streams)."""

    question: str
    answer: Answer | None = None
    partial: str = ""


# -- conversation ------------------------------------------------------------------------------------


def answer_text_html(text: str, turn: int, numbers: Sequence[int]) -> str:
    """Escaped answer text; `[n]` for a real citation n becomes a button that opens it."""
    known = set(numbers)
    out: list[str] = []
    last = 0
    for match in MARKER.finditer(text):
        n = int(match.group(1))
        if n not in known:
            continue
        out.append(esc(text[last : match.start()]))
        out.append(
            f'<button type="button" class="kilde-cite" data-turn="{turn}" data-n="{n}" '
            f'title="[{n}]">[{n}]</button>'
        )
        last = match.end()
    out.append(esc(text[last:]))
    return "".join(out)


def answer_html(answer: Answer, turn: int) -> str:
    """The answer with its `[n]` buttons and the reader's answer spans in bold; sentences the support check
    rejected are wrapped and flagged."""
    numbers = [c.n for c in answer.citations]
    text = answer.answer
    spans: list[tuple[int, int]] = []
    cursor = 0
    for sentence in answer.sentences:
        at = text.find(sentence.text, cursor) if sentence.text else -1
        if at < 0:
            continue
        cursor = at + len(sentence.text)
        if sentence.supported is False:
            spans.append((at, cursor))
    bold = answer_spans_in_text(answer)

    def piece(start: int, end: int) -> str:
        out, last = [], start
        for a, b in bold:
            if start <= a and b <= end:
                out.append(answer_text_html(text[last:a], turn, numbers))
                out.append(f'<strong class="kilde-answer">{esc(text[a:b])}</strong>')
                last = b
        out.append(answer_text_html(text[last:end], turn, numbers))
        return "".join(out)

    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(piece(last, start))
        out.append(f'<span class="kilde-unsupported">{piece(start, end)}</span>')
        last = end
    out.append(piece(last, len(text)))
    return "".join(out)


def answer_spans_in_text(answer: Answer) -> list[tuple[int, int]]:
    """Where each citation's answer span sits in the answer text (its quote is there verbatim), in order."""
    found = []
    for c in answer.citations:
        at = answer.answer.find(c.quote) if c.quote else -1
        inner = answer_span(c, (at, at + len(c.quote))) if at >= 0 else None
        if inner:
            found.append(inner)
    return sorted(found)


def live_region_html(exchanges: Sequence[Exchange], language: str) -> str:
    """A visually hidden polite live region holding the latest finished answer's text, empty while one
    streams. It is always the conversation's first node, so Gradio's update of a `gr.HTML` (a morph, node
    by node) keeps the same element and changes only its text: a screen reader hears each answer once,
    when it is finished, never each streamed piece, and a new conversation (text removed) says nothing.
    A refused answer begins with the "Not in the archive" title the conversation shows above it."""
    latest = exchanges[-1].answer if exchanges else None
    text = ""
    if latest is not None:
        said = latest.answer
        if not latest.answerable and latest.backend != SMALL_TALK:
            said = f"{t(language, 'not_found_title')}. {said}"
        text = esc(said)
    return f'<div class="kilde-live" role="status" aria-live="polite" aria-atomic="true">{text}</div>'


def conversation_html(exchanges: Sequence[Exchange], language: str, dropped: int = 0) -> str:
    """The conversation; `dropped` earlier exchanges are no longer kept (ui/handlers.py: MAX_EXCHANGES).
    Each question and answer takes its direction from its own first letter (`dir="auto"`): an Arabic or
    Hebrew question reads right to left in the left-to-right page."""
    live = live_region_html(exchanges, language)
    if not exchanges:
        intro = esc(t(language, "intro"))
        return f'{live}<div class="kilde-conv kilde-empty"><p class="kilde-intro">{intro}</p></div>'
    parts = [live, '<div class="kilde-conv">']
    if dropped:
        parts.append(f'<p class="kilde-dropped">{esc(t(language, "earlier_dropped", count=dropped))}</p>')
    for turn, ex in enumerate(exchanges):
        parts.append(
            f'<div class="kilde-msg kilde-user"><div class="kilde-who">{esc(t(language, "you"))}</div>'
            f'<div class="kilde-text" dir="auto">{esc(ex.question)}</div></div>'
        )
        answer = ex.answer
        if answer is None:
            body = (
                esc(ex.partial)
                if ex.partial
                else f'<span class="kilde-thinking">{esc(t(language, "thinking"))}</span>'
            )
            parts.append(
                f'<div class="kilde-msg kilde-bot kilde-streaming" data-turn="{turn}">'
                f'<div class="kilde-who">{esc(t(language, "kilde"))}</div>'
                f'<div class="kilde-text" dir="auto">{body}</div></div>'
            )
            continue
        # A greeting or thanks answered by Kilde itself: nothing was searched, so nothing was not found.
        if answer.backend == SMALL_TALK:
            parts.append(
                f'<div class="kilde-msg kilde-bot kilde-notfound kilde-smalltalk" data-turn="{turn}">'
                f'<div class="kilde-who">{esc(t(language, "kilde"))}</div>'
                f'<div class="kilde-text" dir="auto">{esc(answer.answer)}</div></div>'
            )
            continue
        if not answer.answerable:
            parts.append(
                f'<div class="kilde-msg kilde-bot kilde-notfound" data-turn="{turn}">'
                f'<div class="kilde-who">{esc(t(language, "kilde"))}</div>'
                f'<div class="kilde-notfound-title">{esc(t(language, "not_found_title"))}</div>'
                f'<div class="kilde-text" dir="auto">{esc(answer.answer)}</div>'
                f'<div class="kilde-hint">{esc(t(language, "not_found_hint"))}</div>'
                f"{searched_as_html(answer, language)}</div>"
            )
            continue
        text = answer_html(answer, turn)
        said = answer.notice
        if any(s.supported is False for s in answer.sentences):
            # The chat's own note says it, pointing at the underlining: not twice.
            said = (said or "").replace(unsupported_notice(answer.language), "").strip()
        notice = f'<div class="kilde-notice">{esc(said)}</div>' if said else ""
        if any(s.supported is False for s in answer.sentences):
            notice += (
                f'<div class="kilde-notice kilde-unsupported-note">{esc(t(language, "unsupported"))}</div>'
            )
        notice += quoted_language_html(answer, language)
        notice += searched_as_html(answer, language)
        parts.append(
            f'<div class="kilde-msg kilde-bot kilde-answered" data-turn="{turn}">'
            f'<div class="kilde-who">{esc(t(language, "kilde"))}</div>'
            f'<div class="kilde-text" dir="auto">{text}</div>{notice}</div>'
        )
    parts.append("</div>")
    return "".join(parts)


def quoted_language_html(answer: Answer, language: str) -> str:
    """An extractive answer quotes its passages verbatim: say so when they are in another language."""
    languages = answer.quoted_original_languages
    if not languages:
        return ""
    notice = quoted_original_notice(languages, language)
    return f'<div class="kilde-notice kilde-original-language">{esc(notice)}</div>'


def searched_as_html(answer: Answer, language: str) -> str:
    """The follow-up as it was searched, for answers and refusals alike."""
    if not answer.standalone_question or answer.standalone_question == answer.question:
        return ""
    return (
        f'<div class="kilde-standalone">{esc(t(language, "searched_as"))} '
        f"<q>{esc(answer.standalone_question)}</q></div>"
    )


# -- sources and article -----------------------------------------------------------------------------


def locate(article: Article, citation: Citation) -> tuple[int, int] | None:
    """The citation's offsets, checked against the stored text (re-found if the article changed)."""
    if article.text[citation.start : citation.end] == citation.quote:
        return citation.start, citation.end
    at = article.text.find(citation.quote) if citation.quote else -1
    return (at, at + len(citation.quote)) if at >= 0 else None


def answer_span(citation: Citation, span: tuple[int, int]) -> tuple[int, int] | None:
    """The reader's answer inside the located quote (same offsets relative to the quote), if it has one."""
    if citation.answer_start is None or citation.answer_end is None:
        return None
    start = span[0] + citation.answer_start - citation.start
    end = span[0] + citation.answer_end - citation.start
    return (start, end) if span[0] <= start < end <= span[1] else None


def highlighted(
    text: str, start: int, end: int, mark_id: str | None = None, answer: tuple[int, int] | None = None
) -> str:
    """`text` with [start, end) marked as the quote and, inside it, `answer` (the reader's span) in bold."""
    ident = f' id="{esc(mark_id)}"' if mark_id else ""
    if answer and start <= answer[0] < answer[1] <= end:
        quote = (
            f'{esc(text[start : answer[0]])}<strong class="kilde-answer">{esc(text[answer[0] : answer[1]])}'
            f"</strong>{esc(text[answer[1] : end])}"
        )
    else:
        quote = esc(text[start:end])
    return f'{esc(text[:start])}<mark class="kilde-quote"{ident}>{quote}</mark>{esc(text[end:])}'


def passage_window(answer: Answer, citation: Citation, span: tuple[int, int], length: int) -> tuple[int, int]:
    """The cited chunk's bounds, or a window of context around the quote."""
    for hit in answer.retrieved:
        chunk = hit.chunk
        if chunk.id == citation.chunk_id and chunk.start <= span[0] and span[1] <= chunk.end:
            return chunk.start, chunk.end
    return max(0, span[0] - CONTEXT_CHARS), min(length, span[1] + CONTEXT_CHARS)


def meta_line(date: str | None, source: str | None) -> str:
    return " · ".join(esc(x) for x in (date, source) if x)


def panel(heading: str, body: str) -> str:
    """A side panel: its heading stays put above the part that scrolls (ui/app.py scrolls only that part)."""
    return f'<div class="kilde-panel"><h2 class="kilde-panel-heading">{esc(heading)}</h2><div class="kilde-scroll">{body}</div></div>'


def sources_html(
    answer: Answer | None, turn: int, language: str, get_article: Callable[[str], Article | None] | None
) -> str:
    return panel(t(language, "sources_heading"), sources_list_html(answer, turn, language, get_article))


def sources_list_html(answer, turn: int, language: str, get_article) -> str:
    if answer is None or not answer.citations:
        return f'<div class="kilde-sources kilde-empty">{esc(t(language, "no_sources"))}</div>'
    items = []
    for c in answer.citations:
        article = get_article(c.article_id)
        span = locate(article, c) if article else None
        if article and span:
            lo, hi = passage_window(answer, c, span, len(article.text))
            window = article.text[lo:hi]
            inner = answer_span(c, span)
            passage = (
                ("…" if lo > 0 else "")
                + highlighted(
                    window,
                    span[0] - lo,
                    span[1] - lo,
                    answer=(inner[0] - lo, inner[1] - lo) if inner else None,
                )
                + ("…" if hi < len(article.text) else "")
            )
            where = esc(t(language, "quote_at", start=span[0], end=span[1]))
        else:
            passage = f'<mark class="kilde-quote">{esc(c.quote)}</mark>'
            where = esc(t(language, "citation_missing"))
        title = article.title if article else c.title
        items.append(
            f'<li class="kilde-source" data-turn="{turn}" data-n="{c.n}">'
            f'<button type="button" class="kilde-source-open" data-turn="{turn}" data-n="{c.n}" '
            f'title="{esc(t(language, "open_article"))}"><span class="kilde-n">[{c.n}]</span> '
            f'<span class="kilde-title">{esc(title)}</span></button>'
            f'<div class="kilde-meta">{meta_line(c.date, c.source)}</div>'
            f'<blockquote class="kilde-passage">{passage}</blockquote>'
            f'<div class="kilde-where">{esc(c.article_id)} · {where}</div></li>'
        )
    return f'<div class="kilde-sources" data-turn="{turn}"><ol>{"".join(items)}</ol></div>'


def article_html(
    article: Article | None, citation: Citation | None, language: str, mark_id: str | None = "kilde-hl"
) -> str:
    """The full-article panel, its cited quote marked; `mark_id` None gives the mark no id (the widget's: a host
    page may hold two)."""
    return panel(t(language, "article_heading"), article_body_html(article, citation, language, mark_id))


def article_body_html(
    article: Article | None, citation: Citation | None, language: str, mark_id: str | None = "kilde-hl"
) -> str:
    if article is None:
        message = t(language, "citation_missing") if citation else t(language, "no_article")
        return f'<div class="kilde-article kilde-empty">{esc(message)}</div>'
    span = locate(article, citation) if citation else None
    body = (
        highlighted(article.text, *span, mark_id=mark_id, answer=answer_span(citation, span))
        if span and citation
        else esc(article.text)
    )
    url = f'<div class="kilde-url">{esc(article.url)}</div>' if article.url else ""
    n = f' data-n="{citation.n}"' if citation else ""
    return (
        f'<article class="kilde-article" data-article-id="{esc(article.id)}"{n}>'
        f'<h3 class="kilde-article-title">{esc(article.title)}</h3>'
        f'<div class="kilde-meta">{meta_line(article.date, article.source)}</div>{url}'
        f'<div class="kilde-article-text">{body}</div></article>'
    )
