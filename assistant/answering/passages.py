"""How retrieved passages enter the answer prompt: numbered, delimited, neutralised as data, and
fitted into the model's context window by a tiktoken budget."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.core.markup import CHAT_TOKENS, without_tags
from assistant.core.sentences import sentence_spans
from assistant.core.types import Hit
from prompts import Message

PROMPT_SAFETY_TOKENS = 64  # per-message framing the chat template adds, plus slack for other tokenizers

_DELIMITER = re.compile(r"<\s*/?\s*passage\b", re.IGNORECASE)


def neutralise(text: str) -> str:
    """Passage text as inert data: it cannot close the passage delimiter or fake a chat-template turn."""
    text = _DELIMITER.sub(lambda m: m.group().replace("<", "‹"), text)
    return CHAT_TOKENS.sub(
        lambda m: m.group().replace("<", "‹").replace(">", "›").replace("[", "⟦").replace("]", "⟧"), text
    )


def _meta(value: str | None) -> str:
    text = neutralise(without_tags(value or "")).replace('"', "'")
    return re.sub(r"\s+", " ", text).strip()


def format_passage(n: int, hit: Hit, text: str) -> str:
    a = hit.article
    head = f'<passage id="{n}" title="{_meta(a.title)}"'
    if a.date:
        head += f' date="{_meta(a.date)}"'
    if a.source:
        head += f' source="{_meta(a.source)}"'
    return f"{head}>\n{neutralise(text.strip())}\n</passage>"


@dataclass(frozen=True)
class Shown:
    """A passage as it was numbered and shown to the model."""

    n: int
    hit: Hit
    text: str  # possibly trimmed to its most relevant sentences


class ContextBudget:
    """Keeps the most relevant passages, and within a long passage its most relevant sentences, so
    the prompt always fits `llm_context_tokens - llm_max_tokens`. Counts are tiktoken's times `scale`:
    a margin for models with other tokenizers, or the ratio learnt from the server's own tokenizer."""

    def __init__(self, encoding, context_tokens: int, max_tokens: int, scale: float = 1.0):
        self.encoding = encoding
        self.max_tokens = max_tokens
        self.scale = scale
        self.limit = self.limit_for(context_tokens)

    def limit_for(self, context_tokens: int) -> int:
        return context_tokens - self.max_tokens - PROMPT_SAFETY_TOKENS

    def learn(self, estimated_raw: int, measured: int) -> None:
        """The server's tokenizer counted `measured` where tiktoken counted `estimated_raw`."""
        if estimated_raw > 0:
            self.scale = max(1.0, measured / estimated_raw) * 1.03

    def count(self, text: str, raw: bool = False) -> int:
        tokens = len(self.encoding.encode(text, disallowed_special=()))
        return tokens if raw else math.ceil(tokens * self.scale)

    def count_messages(self, messages: Sequence[Message], raw: bool = False) -> int:
        return sum(self.count(m.content, raw) + 4 for m in messages) + 3

    def fit(self, hits: Sequence[Hit], available: int, relevance) -> list[Shown]:
        """`relevance(texts) -> scores` ranks sentences inside a passage that does not fit whole."""
        shown: list[Shown] = []
        remaining = available
        for hit in hits:
            n = len(shown) + 1
            block = format_passage(n, hit, hit.chunk.text)
            cost = self.count(block) + 2
            if cost <= remaining:
                shown.append(Shown(n, hit, hit.chunk.text))
                remaining -= cost
                continue
            trimmed = self.trim(n, hit, remaining - 2, relevance)
            if trimmed is None:
                break
            shown.append(Shown(n, hit, trimmed))
            remaining -= self.count(format_passage(n, hit, trimmed)) + 2
        return shown

    def trim(self, n: int, hit: Hit, available: int, relevance) -> str | None:
        text = hit.chunk.text
        spans = sentence_spans(text) or [(0, len(text))]
        frame = self.count(format_passage(n, hit, ""))
        if available - frame < 16:
            return None
        order = (
            sorted(range(len(spans)), key=lambda i: -relevance([text[s:e] for s, e in spans])[i])
            if len(spans) > 1
            else [0]
        )
        keep: list[int] = []
        for i in order:
            candidate = sorted([*keep, i])
            if self.count(format_passage(n, hit, _join(text, spans, candidate))) <= available:
                keep = candidate
        if keep:
            return _join(text, spans, keep)
        tokens = self.encoding.encode(text[spans[order[0]][0] : spans[order[0]][1]], disallowed_special=())
        return self.encoding.decode(tokens[: int((available - frame - 2) / self.scale)]) + " …"


def _join(text: str, spans, indices: list[int]) -> str:
    parts, previous = [], None
    for i in indices:
        if previous is not None and i != previous + 1:
            parts.append("…")
        parts.append(text[spans[i][0] : spans[i][1]])
        previous = i
    return " ".join(parts)
