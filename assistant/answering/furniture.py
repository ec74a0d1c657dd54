"""Web-page furniture that must never be quoted as an answer. The sentence choosers (the learned picker, the rule
and the reader) skip it all (`is_furniture`):

- leftovers of the page (`is_page_leftover`): photo captions and credits, bylines, the remains of embedded tweets,
  which ingest cleans away too (`ingest/leftovers.yaml`) and this guards against where it missed one;
- what ingest keeps, for the words it lends a search, but is no report to quote: links to other articles ("Les
  også: …", another article's headline), fact-box titles ("Fakta: Julian Assange og Wikileaks"), captions that
  name who or what is pictured ("Jonny Enger, her fotografert ved en tidligere anledning.", "Her med sin advokat
  Brynjar Meling.") or where in the photo someone stands ("Anders Mol (t.v.) og Christian Sørum tok nok en
  seier."), and the page's time stamps ("Oppdatert i dag 01:39");
- the cells of a table or a list, one to a line (`in_table`: a chart's "US Billboard Hot 100", a song title), which
  need their row and column to mean anything; they need the chunk's text around them to be told apart from a
  heading.

The choosers ask `unquotable` of each sentence of a chunk, which asks both."""

from __future__ import annotations

import re

_CAPTION = re.compile(
    r"(\b(foto|photo|bilde|illustrasjon)\s*:|\((foto|photo)\b|\bscanpix\b|getty images|"
    r"/\s*(reuters|ap photo|afp|tt|ntb)\s*\)?\s*$|\b(illustrasjonsbilde|arkivbilde|arkivfoto)\b)",
    re.IGNORECASE,
)
_BYLINE = re.compile(r"^(Av|By|Tekst:?)\s+[A-ZÆØÅ][\w.'-]+(\s+(og\s+)?[A-ZÆØÅ/][\w.'/-]*){0,4}\s*$")
_LINK = re.compile(
    r"^(les også|les òg|les mer|se også|se òg|read more|read also|see also|related)\b", re.IGNORECASE
)
# a title: no sentence's end, or a question the box answers ("Fakta: Hva er et Si ;D-innlegg?")
_FACT_BOX_TITLE = re.compile(r"^(fakta|facts?)\s*:[^.!?]*\??$", re.IGNORECASE)
_PICTURED = re.compile(
    r"(^|,\s*)her\s+(fotografert|avbildet)\b|^her\s+(med|sammen med|er (han|hun|de) sammen med)\b",
    re.IGNORECASE,
)
# Where in the photo a person stands, alone in brackets or after a party: "(t.v.)", "(MDG, f.v.)", "(i midten)".
_PLACE_IN_PHOTO = re.compile(
    r"\((?:[^()]{0,40},\s*)?(?:(?:oppe|nede|bak|foran)\s+)?"
    r"(?:t\.\s?[vh]\.?|f\.\s?v\.?|fra venstre|til venstre|til høyre|i midten|midten|from left|left|right|cent(?:re|er))\)",
    re.IGNORECASE,
)
# A line that ends no sentence: a cell, a list item or a heading. Terminal punctuation may be followed by
# closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?…][\"»”’')\]]*$")
CELL_MAX_WORDS = 10
# When the page was published or updated: "Oppdatert i dag 01:39", "Publisert 12. mars 2019 14:05".
_TIMESTAMP = re.compile(
    r"^(sist\s+)?(oppdatert|publisert|updated|published|last updated)\b.{0,40}?\b\d{1,2}[:.]\d{2}$",
    re.IGNORECASE,
)
_TWEET = re.compile(r"(pic\.twitter\.com|twitter\.com/|(^|\s|\()@\w{2,}|\(@\w+\))", re.IGNORECASE)


def is_page_leftover(sentence: str) -> bool:
    """A photo caption or credit, a byline or a tweet leftover."""
    text = sentence.strip()
    return bool(_CAPTION.search(text) or _BYLINE.match(text) or _TWEET.search(text))


def is_furniture(sentence: str) -> bool:
    """A page leftover, a link to another article, a fact box's title, a caption naming who is pictured or where,
    or when the page was published or updated."""
    text = sentence.strip()
    return is_page_leftover(text) or bool(
        _LINK.match(text)
        or _FACT_BOX_TITLE.match(text)
        or _PICTURED.search(text)
        or _PLACE_IN_PHOTO.search(text)
        or _TIMESTAMP.match(text)
    )


def unquotable(text: str, start: int, end: int) -> bool:
    """Whether text[start:end], a sentence of a chunk's text, is furniture or a table's cell."""
    return is_furniture(text[start:end]) or in_table(text, start, end)


def is_heading(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is a line of its own that ends no sentence, short as a table's cell: a heading
    ("Kritisk for 20 barn"), a name standing alone ("Ødegaard")."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : len(text) if line_end < 0 else line_end]
    return text[start:end].strip() == line.strip() and _is_cell(line)


def in_table(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is a table's or a list's cell: a short line that ends no sentence, with lines like
    it on both sides; at the chunk's edge, where one side is unseen, with two of them on its other side. A
    heading stands above prose, and is quoted where it answers ("Ute av Champions League" below "To be
    continued"), and so is a list's first or last item, beside prose."""
    lines = [m for m in re.finditer(r"[^\n]+", text) if m.group().strip()]
    at = next((i for i, m in enumerate(lines) if m.start() <= start < m.end()), None)
    if at is None or end > lines[at].end() or not _is_cell(lines[at].group()):
        return False

    def cells(*offsets: int) -> bool:
        return all(0 <= at + o < len(lines) and _is_cell(lines[at + o].group()) for o in offsets)

    if at == 0:  # the line before is the chunk's edge: judged by the two after
        return cells(1, 2)
    if at == len(lines) - 1:
        return cells(-2, -1)
    return cells(-1, 1)


def _is_cell(line: str) -> bool:
    line = line.strip()
    return len(line.split()) <= CELL_MAX_WORDS and not _SENTENCE_END.search(line)
