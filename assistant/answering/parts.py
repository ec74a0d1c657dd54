"""Numbered parts of a text that a question names: "Article 5", "artikkel 3", "§ 12", "kapittel 4", "resolusjon
242".

A question about one numbered part is not answered by another: "What does Article 5 say?" about the pact whose
article quotes only Article 4 and the UN Charter's Article 51 would otherwise quote Article 4, the closest passage
to it. A passage holds a part when it names the same label (in either language: "Article" is "artikkel") with the
same number; "artikkel 51" is not "artikkel 5"."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Each label's forms in Bokmål, Nynorsk and English, by the name a part is reported with.
_LABELS = {
    "artikkel": r"artikkel|artikkelen|artikler|artiklene|artikel|article|articles|art\.",
    "paragraf": r"paragraf|paragrafen|paragrafer|paragraph|section|seksjon|§",
    "kapittel": r"kapittel|kapitlet|kapitler|kapittelet|chapter",
    "punkt": r"punkt|punktet|point|item",
    "ledd": r"ledd|leddet|clause|klausul|subsection",
    "resolusjon": r"resolusjon|resolusjonen|resolution",
}
_PART = re.compile(
    r"(?<!\w)(?:" + "|".join(f"(?P<{name}>{forms})" for name, forms in _LABELS.items()) + r")"
    r"\s*(?:nr\.?\s*|no\.?\s*|number\s+)?(?P<number>\d+)(?![\d,.]\d)(?!\w)",
    re.IGNORECASE,
)


def numbered_parts(text: str) -> set[tuple[str, str]]:
    """(label, number) for each numbered part the text names: {("artikkel", "4"), ("artikkel", "51")}."""
    return {_part(m) for m in _PART.finditer(text)}


def part_number_spans(text: str) -> list[tuple[int, int]]:
    """Where in `text` each numbered part's number stands: "51" of "artikkel 51" names a part, it counts nothing."""
    return [m.span("number") for m in _PART.finditer(text)]


def missing_parts(question: str, passages: Sequence[str]) -> list[str]:
    """The numbered parts the question names that none of the passages names, as the question writes them."""
    held = set().union(*(numbered_parts(p) for p in passages))
    missing = [" ".join(m.group().split()) for m in _PART.finditer(question) if _part(m) not in held]
    return list(dict.fromkeys(missing))


def _part(match: re.Match) -> tuple[str, str]:
    """The label's name (the form's group that matched) and the number."""
    return next(name for name in _LABELS if match.group(name)), match.group("number")
