"""Web-page furniture that must never be quoted as an answer: photo captions and credits, bylines, and the
remains of embedded tweets. Both sentence choosers (the learned picker and the rule) skip such sentences."""

from __future__ import annotations

import re

_CAPTION = re.compile(
    r"(\b(foto|photo|bilde|illustrasjon)\s*:|\((foto|photo)\b|\bscanpix\b|getty images|"
    r"/\s*(reuters|ap photo|afp|tt|ntb)\s*\)?\s*$|\b(illustrasjonsbilde|arkivbilde|arkivfoto)\b)",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^(Av|By|Tekst:?)\s+[A-ZÆØÅ][\w.'-]+(\s+(og\s+)?[A-ZÆØÅ/][\w.'/-]*){0,4}\s*$")
_TWEET = re.compile(r"(pic\.twitter\.com|twitter\.com/|(^|\s|\()@\w{2,}|\(@\w+\))", re.IGNORECASE)


def is_furniture(sentence: str) -> bool:
    """A photo caption or credit, a byline, or a tweet leftover."""
    text = sentence.strip()
    return bool(_CAPTION.search(text) or _BYLINE.match(text) or _TWEET.search(text))
