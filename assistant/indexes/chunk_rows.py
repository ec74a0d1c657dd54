"""Every chunk of a lexical snapshot, with its article's metadata and its sentences' stems, in the snapshot's
folder: a reader serves the candidates of a question from here instead of reading them from Chroma, and the
reranker takes the sentences' stems as they were analysed at ingest instead of stemming each candidate again.

Two files: `rows.jsonl` (one compact JSON array per chunk, in the snapshot's chunk order) and `rows.offsets.npy`
(where each line starts, and the end). The reader maps both; a lookup parses the few lines it is asked for."""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.core.types import ArticleMeta, Chunk
from assistant.indexes.sentence_vectors import sentence_key

ROWS_FILE = "rows.jsonl"
OFFSETS_FILE = "rows.offsets.npy"
ARTICLES_FILE = "rows.articles.json"  # also names the format: rows of another format are not read
FORMAT = 1

# (start, end, stems): a sentence's offsets in the chunk text and its stems (`lexical.analyse_sentences`)
Sentences = list[tuple[int, int, list[str]]]


@dataclass(frozen=True)
class ChunkRow:
    chunk: Chunk
    article: ArticleMeta  # content_hash: the article version the chunk was written for
    sentences: Sentences
    title_stems: list[str]
    sentence_keys: list[int]  # `sentence_key` of each sentence: where its vector is stored


class ChunkRowsWriter:
    """Collects rows in the snapshot's chunk order; `save` writes them into a snapshot folder."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._articles: dict[tuple[str, str], int] = {}
        self._article_rows: list[list] = []

    def __len__(self) -> int:
        return len(self._lines)

    def add(self, chunk: Chunk, meta: ArticleMeta, sentences: Sentences, title_stems: list[str]) -> None:
        key = (meta.id, meta.content_hash)
        at = self._articles.get(key)
        if at is None:
            at = self._articles[key] = len(self._article_rows)
            self._article_rows.append(
                [meta.id, meta.title, meta.date, meta.source, meta.url, meta.language, meta.content_hash,
                 " ".join(title_stems)]
            )  # fmt: skip
        record = [
            at,
            chunk.id,
            chunk.position,
            chunk.start,
            chunk.end,
            chunk.token_count,
            chunk.text,
            [[s, e, " ".join(stems), sentence_key(chunk.text[s:e])] for s, e, stems in sentences],
        ]
        # ASCII escapes: any Python string round-trips, a lone surrogate from a JSON source included.
        self._lines.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def save(self, folder: Path) -> None:
        offsets = np.zeros(len(self._lines) + 1, dtype=np.int64)
        np.cumsum([len(line) for line in self._lines], out=offsets[1:])
        with open(folder / ROWS_FILE, "wb") as out:
            out.writelines(self._lines)
        np.save(folder / OFFSETS_FILE, offsets)
        (folder / ARTICLES_FILE).write_text(
            json.dumps({"format": FORMAT, "articles": self._article_rows}, ensure_ascii=False),
            encoding="utf-8",
        )


class ChunkRows:
    """The rows of one snapshot, read-only. Row i belongs to the snapshot's i-th chunk id."""

    def __init__(self, data, offsets: np.ndarray, articles: list[ArticleMeta], title_stems: list[list[str]]):
        self._data = data
        self._offsets = offsets
        self._articles = articles
        self._title_stems = title_stems
        # The pool of one question is read by retrieval and again by the reranker; busy archives repeat chunks.
        self.get = lru_cache(maxsize=4096)(self._parse)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @classmethod
    def load(cls, folder: Path, expected: int) -> ChunkRows | None:
        """None when the folder has no rows (a snapshot written before they were kept) or they do not match
        the snapshot's `expected` chunk count."""
        try:
            offsets = np.load(folder / OFFSETS_FILE)
            header = json.loads((folder / ARTICLES_FILE).read_text(encoding="utf-8"))
            with open(folder / ROWS_FILE, "rb") as f:
                size = f.seek(0, 2)
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            if size and hasattr(mmap, "MADV_WILLNEED"):
                data.madvise(mmap.MADV_WILLNEED)  # the kernel reads it in ahead of the first questions
        except (OSError, ValueError):
            return None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            return None
        if len(offsets) != expected + 1 or int(offsets[-1]) != size:
            return None
        raw = header["articles"]
        articles = [ArticleMeta(a[0], a[1], a[2], a[3], a[4], a[5], a[6]) for a in raw]
        return cls(data, offsets, articles, [a[7].split() for a in raw])

    def _parse(self, index: int) -> ChunkRow:
        line = self._data[int(self._offsets[index]) : int(self._offsets[index + 1])]
        at, chunk_id, position, start, end, tokens, text, sentences = json.loads(line)
        meta = self._articles[at]
        return ChunkRow(
            Chunk(chunk_id, meta.id, position, text, start, end, tokens),
            meta,
            [(s, e, stems.split()) for s, e, stems, _ in sentences],
            self._title_stems[at],
            [key for _, _, _, key in sentences],
        )
