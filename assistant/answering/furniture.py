"""Web-page furniture that must never be quoted as an answer. The sentence choosers (the learned picker, the rule
and the reader) skip it all (`is_furniture`):

- leftovers of the page (`is_page_leftover`): photo captions and credits, bylines, the remains of embedded tweets,
  which ingest cleans away too (`ingest/leftovers.yaml`) and this guards against where it missed one;
- what ingest keeps, for the words it lends a search, but is no report to quote: links to other articles ("Les
  også: …", another article's headline) and fact-box titles ("Fakta: Julian Assange og Wikileaks")."""

from __future__ import annotations

import re

_CAPTION = re.compile(
    r"(\b(foto|photo|bilde|illustrasjon)\s*:|\((foto|photo)\b|\bscanpix\b|getty images|"
    r"/\s*(reuters|ap photo|afp|tt|ntb)\s*\)?\s*$|\b(illustrasjonsbilde|arkivbilde|arkivfoto)\b)",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^(Av|By|Tekst:?)\s+[A-ZÆØÅ][\w.'-]+(\s+(og\s+)?[A-ZÆØÅ/][\w.'/-]*){0,4}\s*$")
_LINK = re.compile(r"^(les også|les mer|se også|read more|read also|see also|related)\b", re.IGNORECASE)
_FACT_BOX_TITLE = re.compile(r"^(fakta|facts?)\s*:[^.!?]*$", re.IGNORECASE)  # a title: no sentence's end
_TWEET = re.compile(r"(pic\.twitter\.com|twitter\.com/|(^|\s|\()@\w{2,}|\(@\w+\))", re.IGNORECASE)


def is_page_leftover(sentence: str) -> bool:
    """A photo caption or credit, a byline or a tweet leftover."""
    text = sentence.strip()
    return bool(_CAPTION.search(text) or _BYLINE.match(text) or _TWEET.search(text))


def is_furniture(sentence: str) -> bool:
    """A page leftover, a link to another article or a fact box's title."""
    text = sentence.strip()
    return is_page_leftover(text) or bool(_LINK.match(text) or _FACT_BOX_TITLE.match(text))
