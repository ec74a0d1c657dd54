"""Turns raw fields from any loader into a cleaned `Article` with a stable id, date and language."""

from __future__ import annotations

import hashlib
import re
from datetime import date as Date

from assistant.types import Article
from ingest.cleaning import clean_lines, normalise_line
from ingest.ids import safe_id

_MONTHS = {
    "januar": 1, "january": 1, "jan": 1, "februar": 2, "february": 2, "feb": 2, "mars": 3, "march": 3,
    "mar": 3, "april": 4, "apr": 4, "mai": 5, "may": 5, "juni": 6, "june": 6, "jun": 6, "juli": 7,
    "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "oktober": 10,
    "october": 10, "okt": 10, "oct": 10, "november": 11, "nov": 11, "desember": 12, "december": 12,
    "des": 12, "dec": 12,
}
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$", re.IGNORECASE)
_DMY_WORDS = re.compile(r"^(\d{1,2})\.?\s+([a-zæøå]+)\.?,?\s+(\d{4})$", re.IGNORECASE)
_MDY_WORDS = re.compile(r"^([a-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$", re.IGNORECASE)
_DMY_DOTS = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$")
LANGUAGES = ("nb", "nn", "en")


def parse_date(value: str | None) -> str | None:
    """An ISO date from '27. november, 2024', 'November 27, 2024', '27.11.2024' or ISO; else None."""
    if not value:
        return None
    text = value.strip().lower()
    for pattern, order in ((_ISO, "ymd"), (_DMY_WORDS, "dmy"), (_MDY_WORDS, "mdy"), (_DMY_DOTS, "dmy")):
        m = pattern.match(text)
        if not m:
            continue
        parts = dict(zip(order, m.groups()[:3]))
        month = parts["m"]
        month_num = int(month) if month.isdigit() else _MONTHS.get(month)
        try:
            return Date(int(parts["y"]), int(month_num or 0), int(parts["d"])).isoformat()
        except (TypeError, ValueError):
            return None
    return None


def language_group(code: str) -> str:
    """Bokmål and Nynorsk share most stems and all names, so they count as one language for matching."""
    return "no" if code in ("nb", "nn", "no") else code


def detect_language(text: str) -> str:
    """nb, nn or en, by py3langid restricted to those (its 'no' is Bokmål)."""
    import py3langid

    global _identifier_ready
    if not _identifier_ready:
        py3langid.set_languages(["no", "nn", "en"])
        _identifier_ready = True
    code, _ = py3langid.classify(text[:3000])
    return {"no": "nb"}.get(code, code)


_identifier_ready = False


def content_hash(*parts: str | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update((part or "").encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


def make_article(*, title: str | None, body: str, given_id: str | None = None, url: str | None = None,
                 date: str | None = None, source: str | None = None, language: str | None = None,
                 author: str | None = None, origin: str | None = None) -> Article:
    """Clean the body, fill in what is missing, and give the article its stable id."""
    cleaned = clean_lines(body.splitlines())
    lines = cleaned.lines
    source = source or cleaned.publisher
    if not title and lines:
        title = lines.pop(0)
    text = "\n\n".join(lines)
    title = normalise_line(title or "")
    iso_date = parse_date(date) if date else None
    lang = (language or "").lower()[:2]
    lang = {"no": "nb"}.get(lang, lang)
    if lang not in LANGUAGES:
        lang = detect_language(f"{title}\n{text}")
    digest = content_hash(title, text, iso_date, source, url, lang, author)
    article_id = safe_id((given_id or "").strip() or (url or "").strip() or f"sha-{digest[:20]}")
    return Article(id=article_id, title=title, text=text, content_hash=digest, language=lang, date=iso_date,
                   source=source or None, url=url or None, author=author or None, origin=origin)
