"""Article ids a user can print, store and fetch: no control characters, valid UTF-8, bounded length."""

from __future__ import annotations

import hashlib

from ingest.discovery import shown

MAX_ID_CHARS = 200  # well under the 512 that GET /api/articles/{id} accepts


def safe_id(given: str) -> str:
    """Control characters become `\\xNN`, undecodable bytes are decoded as cp1252; an id longer than
    MAX_ID_CHARS keeps its start and gains a digest of the whole, so two long ids stay apart."""
    text = shown(given.strip())
    if len(text) <= MAX_ID_CHARS:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{text[: MAX_ID_CHARS - 17]}~{digest}"
