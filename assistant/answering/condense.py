"""Turning a follow-up into a question that can be searched on its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from assistant.core.types import Turn


class Condenser(Protocol):
    def condense(self, question: str, history: Sequence[Turn], language: str) -> str: ...


def condense_extractive(question: str, history: Sequence[Turn]) -> str:
    """Without a language model, a follow-up is searched together with the previous user turn."""
    previous = [t.content for t in history if t.role == "user"][-1:]
    return " ".join([*previous, question]) if previous else question
