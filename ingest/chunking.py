"""Token-aware chunking on paragraph and sentence boundaries, with sentence overlap.

Every chunk is an exact slice of the cleaned article text (`text[start:end]`), so quotes can be
highlighted at their offsets."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from assistant.core.errors import ConfigError
from assistant.core.sentences import sentence_spans
from assistant.core.types import CHUNK_ID_SEPARATOR, Article, Chunk


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    paragraph: int
    tokens: int


class Chunker:
    def __init__(self, encoding, size: int = 180, overlap: int = 30):
        if size < 32:
            raise ConfigError(f"chunk size must be at least 32 tokens, got {size}")
        if not 0 <= overlap < size // 2:
            raise ConfigError(f"chunk overlap must be in [0, size/2), got {overlap} for size {size}")
        self.encoding = encoding
        self.size = size
        self.overlap = overlap

    @property
    def signature(self) -> str:
        return f"{self.encoding.name}:{self.size}:{self.overlap}:v1"

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    def split(self, article: Article) -> list[Chunk]:
        units = self._units(article.text)
        chunks: list[Chunk] = []
        i = 0
        while i < len(units):
            j = self._pack(article.text, units, i)
            start, end = units[i].start, units[j - 1].end
            body = article.text[start:end]
            chunks.append(
                Chunk(
                    id=chunk_id(article.id, len(chunks), body, article.content_hash),
                    article_id=article.id,
                    position=len(chunks),
                    text=body,
                    start=start,
                    end=end,
                    token_count=self.count(body),
                )
            )
            if j >= len(units):
                break
            i = self._overlap_start(units, i, j)
        return chunks

    def _pack(self, text: str, units: list[_Unit], i: int) -> int:
        """End index (exclusive) of the chunk starting at unit i: as many units as fit, preferring to stop
        at a paragraph boundary once the chunk is half full."""
        j = i + 1
        while j < len(units) and self.count(text[units[i].start : units[j].end]) <= self.size:
            j += 1
        if j < len(units):
            half = self.size // 2
            for k in range(j - 1, i, -1):
                if units[k].paragraph != units[k - 1].paragraph:
                    if self.count(text[units[i].start : units[k - 1].end]) >= half:
                        return k
                    break
        return j

    def _overlap_start(self, units: list[_Unit], i: int, j: int) -> int:
        """Restart a few sentences back (up to `overlap` tokens), always making progress."""
        budget, k = self.overlap, j
        while k - 1 > i and units[k - 1].tokens <= budget:
            budget -= units[k - 1].tokens
            k -= 1
        return k

    def _units(self, text: str) -> list[_Unit]:
        units: list[_Unit] = []
        for paragraph, match in enumerate(re.finditer(r"[^\n]+", text)):
            for start, end in sentence_spans(text, match.start(), match.end()):
                tokens = self.count(text[start:end])
                if tokens <= self.size:
                    units.append(_Unit(start, end, paragraph, tokens))
                else:
                    units.extend(self._split_long(text, start, end, paragraph))
        return units

    def _split_long(self, text: str, start: int, end: int, paragraph: int) -> list[_Unit]:
        """A sentence longer than a chunk is cut at word boundaries (or inside a word if it must be)."""
        pieces: list[_Unit] = []
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[start:end])]
        piece_start = None
        last_end = None
        for w_start, w_end in words:
            w_start, w_end = start + w_start, start + w_end
            if piece_start is None:
                piece_start = w_start
            elif self.count(text[piece_start:w_end]) > self.size:
                pieces.append(_Unit(piece_start, last_end, paragraph, self.count(text[piece_start:last_end])))
                piece_start = w_start
            last_end = w_end
            while (window_end := self._overflow(text, piece_start, last_end)) is not None:  # a huge "word"
                cut = self._cut_point(text, piece_start, window_end)
                pieces.append(_Unit(piece_start, cut, paragraph, self.count(text[piece_start:cut])))
                piece_start = cut
        if piece_start is not None and last_end is not None and last_end > piece_start:
            pieces.append(_Unit(piece_start, last_end, paragraph, self.count(text[piece_start:last_end])))
        return pieces

    def _overflow(self, text: str, start: int, end: int) -> int | None:
        """The end of a window `text[start:window_end]` holding more than `size` tokens, or None if all of
        `text[start:end]` fits. The window starts at 8 × size characters and doubles, so cutting a huge
        word costs tokenizer work in proportion to each piece, not to the rest of the word; a span that
        fits the first window is counted whole, exactly as before."""
        width = 8 * self.size
        while True:
            window_end = min(end, start + width)
            if self.count(text[start:window_end]) > self.size:
                return window_end
            if window_end == end:
                return None
            width *= 2

    def _cut_point(self, text: str, start: int, end: int) -> int:
        low, high = start + 1, end
        while low < high:  # the longest prefix that fits
            mid = (low + high + 1) // 2
            if self.count(text[start:mid]) <= self.size:
                low = mid
            else:
                high = mid - 1
        return low


def chunk_id(article_id: str, position: int, text: str, article_hash: str = "") -> str:
    """Stable across runs. Each version of an article gets its own ids, so writing a new version never
    touches the committed one's chunks."""
    digest = hashlib.sha1(f"{article_hash}\x1f{text}".encode()).hexdigest()[:12]
    return f"{article_id}{CHUNK_ID_SEPARATOR}{position}-{digest}"


def embedding_input(article: Article, chunk: Chunk) -> str:
    """The headline gives the embedder the article's context."""
    return f"{article.title}\n{chunk.text}" if article.title else chunk.text
