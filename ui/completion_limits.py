"""OpenAI's `max_tokens` and `stop` applied to a reply Kilde has already written, plain or streamed.

A model stops writing at a stop sequence or at its token limit; Kilde quotes a whole answer, so it cuts the
reply's content (the answer text, then the notice and sources list) where that model would have stopped: before
the first stop sequence to appear, which is not sent, and after at most `max_tokens` tokens of the encoding
`usage` counts with, so that `usage.completion_tokens` never passes the limit. A stream is cut as it goes:
text that may begin a stop sequence is held back until the next piece shows whether it does. `cut_at` tells
the assistant where the cut falls in the answer text (`AskRequest.cut_at`), so that a generative answer stops
reading its model there instead of at the model's own token limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from assistant.answering.answers import CITATION_MARK
from assistant.core.types import Answer

MAX_STOP_SEQUENCES = 4  # as OpenAI
MAX_STOP_LENGTH = 1000  # bounds the work of holding back a stream's tail; no client needs a longer one
MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class CompletionLimits:
    """`max_tokens`: None for no limit. `stop`: the stop sequences, none empty."""

    max_tokens: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if any(not s for s in self.stop):
            raise ValueError("a stop sequence cannot be empty")

    @property
    def cut_nothing(self) -> bool:
        return self.max_tokens is None and not self.stop


def within_tokens(text: str, max_tokens: int, encoding) -> str:
    """The longest start of `text` that the encoding counts as at most `max_tokens` tokens: its first
    `max_tokens` tokens, less a character whose bytes those tokens split. tiktoken may count a cut text
    differently from the same text inside a longer one, so the cut is counted again, one token fewer if it
    must be."""
    if len(text.encode("utf-8", "surrogatepass")) <= max_tokens:
        return text  # a token holds at least one byte
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    for keep in range(max_tokens, 0, -1):
        head = encoding.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore")
        if len(encoding.encode(head, disallowed_special=())) <= max_tokens:
            return text[: len(head)]
    return ""


class ContentCutter:
    """Cuts a reply's content, fed in the pieces it is sent in, to `limits`. `feed` and then `finish` return
    the text to send; once cut, `reason` is OpenAI's finish reason, "stop" or "length" (None while uncut)."""

    def __init__(self, limits: CompletionLimits, encoding=None):
        if limits.max_tokens is not None and encoding is None:
            raise ValueError("max_tokens needs the encoding to count tokens with")
        self.limits = limits
        self.encoding = encoding
        self.sent = ""
        self.held = ""  # the end of the text so far that may begin a stop sequence
        self.reason: Literal["stop", "length"] | None = None

    def feed(self, piece: str) -> str:
        if self.reason is not None:
            return ""
        text = self.held + piece
        # A stop sequence that began in an earlier piece began in `held`, the longest end that could begin one.
        # Of the sequences found, a model would have stopped at the first to end; of two ending together, the
        # longer.
        found = [(at + len(s), at) for s in self.limits.stop if (at := text.find(s)) >= 0]
        if found:
            self.reason = "stop"
            self.held = ""
            return self._release(text[: min(found)[1]])
        keep = self._may_begin_stop(text)
        self.held = text[len(text) - keep :]
        return self._release(text[: len(text) - keep])

    def finish(self) -> str:
        """The end of the content: what was held back begins no stop sequence after all."""
        if self.reason is not None:
            return ""
        text, self.held = self.held, ""
        return self._release(text)

    def _may_begin_stop(self, text: str) -> int:
        longest = 0
        for stop in self.limits.stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def _release(self, text: str) -> str:
        if self.limits.max_tokens is not None and text:
            allowed = within_tokens(self.sent + text, self.limits.max_tokens, self.encoding)
            if len(allowed) < len(self.sent) + len(text):
                self.reason = "length"
                self.held = ""
                # tiktoken may count a longer text's start as more tokens than it counted it alone: what was
                # sent stays sent, and nothing more goes.
                text = allowed[len(self.sent) :]
        self.sent += text
        return text


def cut_content(content: str, limits: CompletionLimits, encoding=None) -> tuple[str, str | None]:
    """`content` cut to `limits` in one piece, and the finish reason if it was cut."""
    cutter = ContentCutter(limits, encoding)
    shown = cutter.feed(content) + cutter.finish()
    return shown, cutter.reason


def cut_at(limits: CompletionLimits, encoding=None) -> Callable[[str], int | None] | None:
    """For `AskRequest.cut_at`: how much of an answer text written so far `limits` leave, None while they
    leave it whole; None itself when they cut nothing. The answer text comes first in the content, so its cut
    is the content's."""
    if limits.cut_nothing:
        return None

    def kept(text: str) -> int | None:
        shown, reason = cut_content(text, limits, encoding)
        return None if reason is None else len(shown)

    return kept


def as_shown(answer: Answer, whole: str, shown: str) -> Answer:
    """`answer` as a reply whose answer text `whole` was cut to `shown` shows it: only the citations whose
    `[n]` markers are still shown (a client lists them as the reply's sources), only the sentences shown
    whole, and `partial`. `answer` itself when nothing of the answer text was cut."""
    if shown == whole:
        return answer
    cited = {int(n) for n in MARKER.findall(shown)}
    plain, cursor, sentences = CITATION_MARK.sub("", shown), 0, []
    for sentence in answer.sentences:
        at = plain.find(sentence.text, cursor)
        if at < 0:
            break  # the shown text is the answer's start: the sentences after a missing one are cut off too
        cursor = at + len(sentence.text)
        sentences.append(replace(sentence, citations=tuple(n for n in sentence.citations if n in cited)))
    return replace(
        answer,
        answer=shown,
        citations=tuple(c for c in answer.citations if c.n in cited),
        sentences=tuple(sentences),
        partial=True,
    )
