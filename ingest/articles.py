"""Turns raw fields from any loader into a cleaned `Article` with a stable id, date and language."""

from __future__ import annotations

import hashlib

from assistant.core.dates import parse_date
from assistant.core.language import LANGUAGES, detect_language
from assistant.core.sentences import sentence_spans
from assistant.core.types import Article
from ingest.cleaning import clean_lines, normalise_line
from ingest.ids import safe_id


def content_hash(*parts: str | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update((part or "").encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


HEADLINE_MAX_CHARS = 200


def headline_of(paragraph: str) -> str:
    """The headline of a text of one paragraph and no title: its first sentence, cut at a word before
    `HEADLINE_MAX_CHARS` (the whole paragraph stays the text)."""
    spans = sentence_spans(paragraph)
    first = paragraph[spans[0][0] : spans[0][1]] if spans else paragraph
    if len(first) <= HEADLINE_MAX_CHARS:
        return first
    cut = first[: HEADLINE_MAX_CHARS - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > HEADLINE_MAX_CHARS // 2 else cut).rstrip() + "…"


def language_code(given: str | None) -> str:
    """ "nb-NO" -> "nb", "no" -> "nb": the code a file's language field names (not necessarily one Kilde supports)."""
    code = (given or "").lower()[:2]
    return {"no": "nb"}.get(code, code)


def make_article(
    *,
    title: str | None,
    body: str,
    given_id: str | None = None,
    url: str | None = None,
    date: str | None = None,
    source: str | None = None,
    language: str | None = None,
    author: str | None = None,
    origin: str | None = None,
) -> Article:
    """Clean the body, fill in what is missing, and give the article its stable id."""
    cleaned = clean_lines(body.splitlines())
    lines = cleaned.lines
    source = source or cleaned.publisher
    if not title and lines:  # the first line heads the text, and a text of one line heads itself
        title = lines.pop(0) if len(lines) > 1 else headline_of(lines[0])
    text = "\n\n".join(lines)
    title = normalise_line(title or "")
    iso_date = parse_date(date) if date else None
    lang = language_code(language)
    if lang not in LANGUAGES:
        lang = detect_language(f"{title}\n{text}")
    digest = content_hash(title, text, iso_date, source, url, lang, author)
    article_id = safe_id((given_id or "").strip() or (url or "").strip() or f"sha-{digest[:20]}")
    return Article(
        id=article_id,
        title=title,
        text=text,
        content_hash=digest,
        language=lang,
        date=iso_date,
        source=source or None,
        url=url or None,
        author=author or None,
        origin=origin,
    )
