"""A fixed pool of real sentences for generated articles: Norwegian news sentences from the NorQuAD
passages in corpus/, and a few English ones."""

from __future__ import annotations

import json

from assistant.core.sentences import sentence_spans
from assistant.testing.corpus import NORQUAD_NEWS
from ingest.cleaning import clean_lines

ENGLISH = (
    "The ferry operator will raise fares on all of its six routes from the first of April.",
    "Commuters reacted with frustration when the council published the new timetable on Monday.",
    "The county council will discuss the proposal at its meeting later this month.",
    "Construction of the new library is expected to start in the spring and take two years.",
    "Residents say the harbour bath has become the most popular meeting place in town.",
    "The club reported a deficit for the third year in a row and plans to cut costs.",
)


def sentence_pool(norwegian: int = 48) -> tuple[str, ...]:
    """`norwegian` sentences of 40-200 characters, in corpus order, then the English ones. Only sentences
    that cleaning keeps as they are ("LES OGSÅ: ..." lines are dropped), so an article's text is known."""
    data = json.loads((NORQUAD_NEWS / "answers_1.json").read_text(encoding="utf-8"))
    found: list[str] = []
    for entry in data["data"]:
        for paragraph in entry["paragraphs"]:
            body = paragraph["context"].partition("\n")[2]
            found += [
                body[s:e]
                for s, e in sentence_spans(body)
                if 40 <= e - s <= 200 and clean_lines([body[s:e]]).lines == [body[s:e]]
            ]
            if len(found) >= norwegian:
                return tuple(found[:norwegian]) + ENGLISH
    return tuple(found) + ENGLISH
