"""Turning a follow-up into a question that can be searched on its own."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from assistant.core.types import Turn


class Condenser(Protocol):
    def condense(self, question: str, history: Sequence[Turn], language: str) -> str: ...


def condense_extractive(question: str, history: Sequence[Turn]) -> str:
    """Without a language model, a follow-up is searched together with the previous user turn."""
    previous = [t.content for t in history if t.role == "user"][-1:]
    return " ".join([*previous, question]) if previous else question


_QUESTION_WORDS = frozenset((  # noqa: SIM905 (one word list per language reads better)
    "what who whom whose which where when why how is are was were do does did can could will would should has "
    "have had may might shall "
    "hva hvem hvilken hvilke hvilket hvor hvordan hvorfor når er var har hadde kan kunne vil ville skal skulle "
    "bør må gjør gjorde finnes "
    "kva kven kvifor korleis kvar kor kva for").split())


def keeps_the_question(follow_up: str, standalone: str) -> bool:
    """Whether a model's condensed follow-up can be searched: it is a question, it keeps the follow-up's
    names and numbers, and it shares at least one of its content words (a small model may turn a
    follow-up into a statement, or into another question)."""
    from assistant.answering.support import missing_terms
    from assistant.indexes.lexical import analyse_query

    text = standalone.strip()
    first = re.match(r"\w+", text.lower())
    if not (text.endswith("?") or (first and first.group() in _QUESTION_WORDS)):
        return False
    if missing_terms(follow_up, [text]):
        return False
    wanted = set(analyse_query(follow_up))
    return not wanted or bool(wanted & set(analyse_query(text)))
