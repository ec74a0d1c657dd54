"""Where a quote of an over-long sentence begins and ends. Ingest cuts a sentence longer than a chunk into pieces at
word boundaries (`ingest.chunking`), so the sentence a chunk holds at its start or end may be such a piece, and
quoted as it is it opened mid-clause ("kvartalsstruktur og byggehøyde mot gaten, og fasadebevaring …", "39 to the
square, finally sold …") or stopped mid-clause ("… var den niende i rekken av de"). Such a quote opens after the
piece's first clause boundary (a comma, semicolon or colon) and stops before its last one, where that keeps at
least half the piece and the reader's answer span; a quote with no answer span (the rule's or the picker's choice)
keeps the whole piece, since what it was chosen for may lie in the words a clause boundary would leave out. The
answer marks each end where the sentence goes on with `CUT_MARK`, outside the quote, so that the citation's
offsets are still those of exactly the characters quoted."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.core.sentences import sentence_spans

CUT_MARK = "…"  # where an answer's quote leaves out the rest of its sentence
_CLAUSE_END = re.compile(r"[,;:](?=\s)")
_SENTENCE_CLOSE = re.compile(r"[.!?…][\"»”’)\]]*$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Cut:
    """A quote's offsets in the article text, and whether its sentence goes on before it (`opens_cut`) or after it
    (`closes_cut`)."""

    start: int
    end: int
    opens_cut: bool = False
    closes_cut: bool = False


def cut_quote(text: str, start: int, end: int, keep: tuple[int, int] | None = None) -> Cut:
    """`text[start:end]`, a quote of the article `text`, begun and ended where a reader can take it up: whole where
    it begins and ends a sentence; else, around `keep` (the reader's answer span, which stays inside), at a clause
    boundary; without `keep`, the piece as it is, bar a word cut inside."""
    first = _sentence_at(text, start)
    last = _sentence_at(text, end - 1)
    opens_cut = first is not None and first[0] < start
    closes_cut = last is not None and end < last[1]
    if opens_cut:
        start = _clause_start(text, start, end, keep[0] if keep else None)
    if closes_cut:
        end = _clause_end(text, start, end, keep[1] if keep else None)
    return Cut(start, end, opens_cut, closes_cut)


def may_be_piece(text: str, opens_chunk: bool, closes_chunk: bool) -> bool:
    """Whether a sentence at a chunk's edge (`text`) may be a piece of a longer one, which only the stored article
    tells: one that closes its chunk as sentences end is whole there. Checked first, so that most answers never
    look the article up; a sentence that opens its chunk always is (a piece may open with a name: "Qing-keisere
    som regjerte i Kina.")."""
    return opens_chunk or (closes_chunk and _SENTENCE_CLOSE.search(text.rstrip()) is None)


def marked(quote: str, cut: Cut) -> str:
    """The quote as the answer shows it: `CUT_MARK` where its sentence goes on."""
    opening = f"{CUT_MARK} " if cut.opens_cut else ""
    closing = f" {CUT_MARK}" if cut.closes_cut else ""
    return f"{opening}{quote}{closing}"


def _sentence_at(text: str, at: int) -> tuple[int, int] | None:
    """The sentence of `text` that holds offset `at`, as ingest split its paragraph into sentences."""
    paragraph_start = text.rfind("\n", 0, at) + 1
    paragraph_end = text.find("\n", at)
    spans = sentence_spans(text, paragraph_start, len(text) if paragraph_end < 0 else paragraph_end)
    return next(((s, e) for s, e in spans if s <= at < e), None)


def _clause_start(text: str, start: int, end: int, keep: int | None) -> int:
    """Past the first clause boundary of `text[start:end]` where that leaves at least half of it and is no later
    than `keep` (None: no clause is left out); else past the first space where the piece opens mid-word; else
    `start`."""
    latest = start + (end - start) // 2
    boundary = _CLAUSE_END.search(text, start, end) if keep is not None else None
    if boundary is not None and (after := _SPACE.match(text, boundary.end()).end()) <= min(latest, keep):
        return after
    if start > 0 and not text[start - 1].isspace():  # a word too long for a chunk was cut inside
        space = _SPACE.search(text, start, end)
        if space is not None and space.end() <= min(latest, end if keep is None else keep):
            return space.end()
    return start


def _clause_end(text: str, start: int, end: int, keep: int | None) -> int:
    """At the last clause boundary of `text[start:end]` (one that ends it too) where that keeps at least half of it
    and is no earlier than `keep` (None: no clause is left out); else at the last space where the piece stops
    mid-word; else `end`."""
    earliest = start + (end - start + 1) // 2
    boundaries = (
        [b.start() for b in _CLAUSE_END.finditer(text, start, min(end + 1, len(text))) if b.start() < end]
        if keep is not None
        else []
    )
    if boundaries and boundaries[-1] >= max(earliest, keep):
        return boundaries[-1]
    if end < len(text) and not text[end].isspace():  # a word too long for a chunk was cut inside
        spaces = [space.start() for space in _SPACE.finditer(text, start, end)]
        if spaces and spaces[-1] >= max(earliest, start if keep is None else keep):
            return spaces[-1]
    return end
