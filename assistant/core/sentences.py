"""Sentence boundaries with character offsets, tuned for Norwegian and English news prose."""

from __future__ import annotations

import re

_CLOSING = "\"»”’')]"  # what may close a sentence after its terminal punctuation: quotes, brackets
# A boundary: terminal punctuation, optional closing quotes, white space, then something that starts
# a sentence. "27. november" and "bl.a. at" do not split because a lower-case word follows.
_BOUNDARY = re.compile(rf"[.!?…][{re.escape(_CLOSING)}]*\s+(?=[\"«“‘(\[–—-]?\s?[A-ZÆØÅÄÖÜ0-9])")
_ABBREVIATIONS = {
    "bl.a",
    "f.eks",
    "dvs",
    "ca",
    "nr",
    "kl",
    "st",
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "jf",
    "mv",
    "osv",
    "etc",
    "vs",
    "ref",
    "tlf",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "okt",
    "nov",
    "des",
    "dec",
    "oct",
    "no",
    "inc",
    "ltd",
    "co",
    "gen",
    "sen",
    "rep",
    "u.s",
    "e.g",
    "i.e",
}


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences in text[start:end], white space trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for paragraph in re.finditer(r"[^\n]+", text[start:end]):
        p_start, p_end = start + paragraph.start(), start + paragraph.end()
        cursor = p_start
        for match in _BOUNDARY.finditer(text, p_start, p_end):
            word = re.search(r"(\S+)$", text[cursor : match.start()])
            # "(ca. 25 %)": an abbreviation may open a parenthesis or a quote.
            token = word.group(1).lower().rstrip(".").lstrip('"«“‘([') if word else ""
            if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
                continue
            _append(spans, text, cursor, match.end())
            cursor = match.end()
        _append(spans, text, cursor, p_end)
    return spans


def is_question(sentence: str) -> bool:
    """Whether a sentence is a question ("Hvordan rense sluket på badet?", «Hvorfor?»)."""
    return sentence.rstrip().rstrip(_CLOSING).endswith("?")


def sentences_touched(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The bounds of the sentences that the span text[start:end] touches (None: it touches none)."""
    touched = [(s, e) for s, e in sentence_spans(text) if s < end and start < e]
    return (touched[0][0], touched[-1][1]) if touched else None


def _append(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
