"""Years a question names, which the passages it is answered from must mention.

"Hvor stort resultat før skatt hadde Norwegian i tredje kvartal 2019?" reaches the article about Norwegian's
results and would quote its 2018 figure: the passages found mention 2019 elsewhere, so the answerability gate
passes, but the quoted ones do not. A year is a number from 1500 to 2099 standing alone ("i 2019", "Norway Cup
2019", "2019/20"), not a decade ("på 1920-tallet") nor part of a longer number ("1.2019", "20195"). A passage
mentions it when it holds the number in any form the answerability gate reads (`support.numbers`: "2018-2019",
"2019-sesongen")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answering.support import numbers

_YEAR = re.compile(r"(?<![\d.,])\b(1[5-9]\d\d|20\d\d)\b(?![.,]\d)(?!\s*-?\s*tal)")


def named_years(question: str) -> list[str]:
    """The years the question names, in order, each once."""
    return list(dict.fromkeys(m.group(1) for m in _YEAR.finditer(question)))


def missing_years(question: str, passages: Sequence[str]) -> list[str]:
    """The years the question names that none of the passages mentions."""
    years = named_years(question)
    if not years:
        return []
    held = set().union(*(numbers(p) for p in passages))
    return [year for year in years if year not in held]
