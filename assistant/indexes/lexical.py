"""BM25 over chunks with language-aware stemming (Snowball Norwegian for nb/nn, English for en).

The index is built from the store after each ingest and persisted beside it, stamped with the
store's generation. Queries never rebuild it; a reader reloads it only when the generation moves.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.core.sentences import sentence_spans
from assistant.core.types import ArticleMeta, Chunk, Filters, article_of_chunk
from assistant.indexes.chunk_rows import ChunkRow, ChunkRows, ChunkRowsWriter, Sentences
from assistant.indexes.store import date_int
from assistant.indexes.summary import summarise, write_summary

# A decimal number or a clock time ("4,3", "3.5", "14.30") is one term, its comma read as a point, so that "Article
# 4" does not find every "4,3 prosent"; a number with more separators (a date, "1.000.000") stays split, so that
# "2019" still finds "04.05.2019".
_TERM = re.compile(r"(?<![\d.,])\d+[.,]\d+(?![.,]?\d)|\w+", re.UNICODE)
# Stamped on each snapshot: a snapshot analysed otherwise is rebuilt from the store on load.
ANALYSER_VERSION = 2
_STEMMER_FOR = {"nb": "norwegian", "nn": "norwegian", "en": "english"}


@lru_cache(maxsize=4)
def stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(_STEMMER_FOR.get(language, "norwegian"))


@lru_cache(maxsize=4)
def stopwords(language: str) -> frozenset[str]:
    import bm25s.stopwords as sw

    words = sw.STOPWORDS_EN if language == "en" else sw.STOPWORDS_NORWEGIAN
    return frozenset(words)


def analyse(text: str, language: str) -> list[str]:
    words = [w.replace(",", ".") for w in _TERM.findall(text.lower()) if w not in stopwords(language)]
    return stemmer(language).stemWords(words)


HEAD_MIN_CHARS = 4  # a compound's head as short as "pakt" ("forsvarspakt") ...
MODIFIER_MIN_CHARS = 3  # ... after at least this much of another word
STEM_MIN_CHARS = 6  # a derivation shares a stem at least this long ("gjenoppliv": "gjenoppliving")


def begins(shorter: str, longer: str) -> bool:
    """`longer` begins with `shorter`, at least `STEM_MIN_CHARS` letters long: a derivation or a compound's first
    part, which the stemmer leaves apart ("utveksling" and "utveksl", "gjenoppliving" and "gjenoppliv")."""
    return len(shorter) >= STEM_MIN_CHARS and longer.startswith(shorter)


def holds_within(term: str, stem: str) -> bool:
    """`stem` is a longer word that holds `term` as its head ("forsvarsavtal" for "avtal") or begins with it
    (`begins`); never for numbers."""
    if not term.isalpha() or len(stem) <= len(term):
        return False
    if len(term) >= HEAD_MIN_CHARS and len(stem) - len(term) >= MODIFIER_MIN_CHARS and stem.endswith(term):
        return True
    return begins(term, stem)


def analyse_sentences(text: str, language: str) -> Sentences:
    """Each sentence of `text` with its offsets and stems (what the reranker compares a question with)."""
    return [(s, e, analyse(text[s:e], language)) for s, e in sentence_spans(text)]


def _begins_some(sorted_terms: list[str], prefix: str) -> bool:
    i = bisect.bisect_left(sorted_terms, prefix)
    return i < len(sorted_terms) and sorted_terms[i].startswith(prefix)


def analyse_query(text: str) -> list[str]:
    """A question may be in either language, whatever the articles are in: stem it both ways."""
    seen: dict[str, None] = {}
    for language in ("nb", "en"):
        for token in analyse(text, language):
            seen.setdefault(token, None)
    return list(seen)


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    score: float
    language: str


class LexicalIndex:
    """An immutable BM25 snapshot with per-chunk filter columns and, when it was built with them, the chunks'
    rows (`ChunkRows`)."""

    def __init__(
        self,
        bm25,
        chunk_ids: list[str],
        dates: np.ndarray,
        sources: np.ndarray,
        source_names: list[str],
        languages: np.ndarray,
        language_names: list[str],
        generation: str,
        rows: ChunkRows | ChunkRowsWriter | None = None,
        folder: str | None = None,
    ):
        self._bm25 = bm25
        self.chunk_ids = chunk_ids
        self._dates = dates
        self._sources = sources
        self._source_names = source_names
        self._languages = languages
        self._language_names = language_names
        self.generation = generation
        self._rows = rows  # a writer until the snapshot is saved, then the rows it wrote
        self.folder = folder  # the snapshot folder's name, once saved or loaded
        self._row_of: dict[str, int] | None = None
        self._article_ids: np.ndarray | None = None  # each chunk's article, built on the first article filter
        # The vocabulary in order, forwards and reversed, built on the first affix lookup.
        self._sorted_terms: tuple[list[str], list[str]] | None = None
        self._terms_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.chunk_ids)

    @classmethod
    def build(cls, rows: Iterable[tuple[Chunk, ArticleMeta]], generation: str) -> LexicalIndex:
        ids, tokens, dates, sources, languages = [], [], [], [], []
        writer = ChunkRowsWriter()
        for chunk, meta in rows:
            ids.append(chunk.id)
            tokens.append(analyse(f"{meta.title}\n{chunk.text}", meta.language))
            dates.append(date_int(meta.date))
            sources.append(meta.source or "")
            languages.append(meta.language)
            writer.add(
                chunk, meta, analyse_sentences(chunk.text, meta.language), analyse(meta.title, meta.language)
            )
        return cls.from_tokens(ids, tokens, dates, sources, languages, generation, writer)

    @classmethod
    def from_tokens(
        cls,
        ids: list[str],
        tokens: list[list[str]],
        dates: list[int],
        sources: list[str],
        languages: list[str],
        generation: str,
        rows: ChunkRowsWriter | None = None,
    ) -> LexicalIndex:
        """Index chunks already analysed (each chunk's `analyse(title + text, language)`); `rows`: their rows,
        in the same order."""
        import bm25s

        tokens = [t or [""] for t in tokens]
        source_names = sorted(set(sources))
        language_names = sorted(set(languages))
        bm25 = None
        if ids:
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
        return cls(
            bm25,
            ids,
            np.asarray(dates, dtype=np.int32),
            np.asarray([source_names.index(s) for s in sources], dtype=np.int32),
            source_names,
            np.asarray([language_names.index(x) for x in languages], dtype=np.int32),
            language_names,
            generation,
            rows if rows is not None and len(rows) == len(ids) else None,
        )

    def search(self, query: str, k: int, filters: Filters) -> list[LexicalHit]:
        if self._bm25 is None:
            return []
        vocab = self._bm25.vocab_dict
        token_ids = [vocab[t] for t in analyse_query(query) if t in vocab]
        if not token_ids:
            return []
        scores = self._bm25.get_scores_from_ids(token_ids)
        mask = self._mask(filters)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [
            LexicalHit(self.chunk_ids[i], float(scores[i]), self._language_names[self._languages[i]])
            for i in top
            if scores[i] > 0
        ]

    @property
    def source_names(self) -> list[str]:
        """The sources the indexed articles name, sorted ("" stands for articles that name none)."""
        return self._source_names

    @property
    def language_names(self) -> list[str]:
        """The languages of the indexed articles, sorted."""
        return self._language_names

    def document_frequency(self, terms: list[str]) -> tuple[list[int], int]:
        """How many chunks hold each (analysed) term, and the number of chunks: the reranker's IDF weights."""
        if self._bm25 is None:
            return [0] * len(terms), 0
        vocab, indptr = self._bm25.vocab_dict, self._bm25.scores["indptr"]
        return [int(indptr[vocab[t] + 1] - indptr[vocab[t]]) if t in vocab else 0 for t in terms], len(
            self.chunk_ids
        )

    def affixes_in_use(self, stems: list[str]) -> list[bool]:
        """Whether some indexed term begins or ends with each stem: a question's "forplikt" in a derived
        "forpliktelse" or at the end of a compound, "forsvarsforplikt"."""
        if self._bm25 is None:
            return [False] * len(stems)
        with self._terms_lock:
            if self._sorted_terms is None:
                self._sorted_terms = (
                    sorted(self._bm25.vocab_dict),
                    sorted(term[::-1] for term in self._bm25.vocab_dict),
                )
        forward, backward = self._sorted_terms
        return [_begins_some(forward, stem) or _begins_some(backward, stem[::-1]) for stem in stems]

    @property
    def has_rows(self) -> bool:
        return isinstance(self._rows, ChunkRows)

    def row(self, chunk_id: str) -> ChunkRow | None:
        """The chunk's row as this snapshot holds it; None when it holds no such chunk (or no rows)."""
        if not isinstance(self._rows, ChunkRows):
            return None
        if self._row_of is None:
            self._row_of = {cid: i for i, cid in enumerate(self.chunk_ids)}
        at = self._row_of.get(chunk_id)
        return None if at is None else self._rows.get(at)

    def _mask(self, filters: Filters) -> np.ndarray | None:
        if filters.empty:
            return None
        mask = np.ones(len(self.chunk_ids), dtype=bool)
        if filters.since:
            mask &= self._dates >= date_int(filters.since)
        if filters.until:
            # An undated article (0) precedes every date, as in the store's `where` and `Filters.admits`.
            mask &= self._dates <= date_int(filters.until)
        if filters.sources:
            wanted = [self._source_names.index(s) for s in filters.sources if s in self._source_names]
            mask &= np.isin(self._sources, wanted)
        if filters.languages:
            wanted = [self._language_names.index(x) for x in filters.languages if x in self._language_names]
            mask &= np.isin(self._languages, wanted)
        if filters.articles:
            if self._article_ids is None:
                self._article_ids = np.array([article_of_chunk(c) for c in self.chunk_ids], dtype=object)
            mask &= np.isin(self._article_ids, list(filters.articles))
        return mask

    # -- persistence -----------------------------------------------------------------------------

    def save(self, root: Path, summary: dict | None = None) -> None:
        """Write a new snapshot folder (with the index summary, when given), then switch the CURRENT
        pointer atomically."""
        root.mkdir(parents=True, exist_ok=True)
        folder = root / f"snapshot-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        if self._bm25 is not None:
            self._bm25.save(str(folder), show_progress=False)
        np.savez(folder / "columns.npz", dates=self._dates, sources=self._sources, languages=self._languages)
        (folder / "meta.json").write_text(
            json.dumps(
                {
                    "generation": self.generation,
                    "analyser": ANALYSER_VERSION,
                    "chunk_ids": self.chunk_ids,
                    "source_names": self._source_names,
                    "language_names": self._language_names,
                },
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        if isinstance(self._rows, ChunkRowsWriter):
            self._rows.save(folder)
        if summary is not None:
            write_summary(folder, summary)
        pointer = root / "CURRENT"
        tmp = root / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(folder.name)
        os.replace(tmp, pointer)
        self.folder = folder.name
        if isinstance(self._rows, ChunkRowsWriter):
            self._rows = ChunkRows.load(folder, len(self.chunk_ids))
        for old in root.glob("snapshot-*"):
            if old.name != folder.name:
                shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def _published_meta(root: Path) -> tuple[Path, dict] | None:
        try:
            folder = root / (root / "CURRENT").read_text().strip()
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return (folder, meta) if isinstance(meta, dict) else None

    @staticmethod
    def _analysed_otherwise(meta: dict) -> bool:
        return meta.get("analyser", 1) != ANALYSER_VERSION

    @classmethod
    def analysed_otherwise(cls, root: Path) -> bool:
        """Whether the published snapshot split its text into terms as another version of Kilde did."""
        published = cls._published_meta(root)
        return published is not None and cls._analysed_otherwise(published[1])

    @classmethod
    def load(cls, root: Path) -> LexicalIndex | None:
        published = cls._published_meta(root)
        if published is None or cls._analysed_otherwise(published[1]):
            return None  # missing, or its terms would not match a question's: the caller rebuilds it
        folder, meta = published
        try:
            columns = np.load(folder / "columns.npz")
        except (OSError, ValueError):
            return None
        bm25 = None
        if meta["chunk_ids"]:
            import bm25s

            bm25 = bm25s.BM25.load(str(folder))
        return cls(
            bm25,
            meta["chunk_ids"],
            columns["dates"],
            columns["sources"],
            meta["source_names"],
            columns["languages"],
            meta["language_names"],
            meta["generation"],
            ChunkRows.load(folder, len(meta["chunk_ids"])),
            folder.name,
        )


class LexicalSide:
    """Keeps a reader's snapshot in step with the store's generation, checking it at most every few seconds.

    `ingest_marker`: the file a writer holds from its first change to the store until its snapshot is
    published (`IngestPipeline.dirty_marker`); None when writers may run elsewhere (a Chroma server), so the
    snapshot's rows are never taken for the committed state.
    `follow_in_background`: once a snapshot is loaded, the question that finds it due for a check is answered
    from it while a thread of its own checks the generation and, when an ingest has published, reopens the
    store and loads the new snapshot (a server's way: the reload grows with the archive,
    bench/RESULTS-follow-questions.md, and every question arriving meanwhile waited for it). Otherwise the
    question itself checks and reloads (a command that asks once)."""

    def __init__(
        self,
        store,
        root: Path,
        check_every_s: float = 2.0,
        ingest_marker: Path | None = None,
        follow_in_background: bool = False,
    ):
        self._store = store
        self.root = root
        self._check_every_s = check_every_s
        self._ingest_marker = ingest_marker
        self._follow_in_background = follow_in_background
        self._index: LexicalIndex | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._follower: threading.Thread | None = None
        self._follower_starting = threading.Lock()
        self._follow_error: str | None = None

    def current(self) -> LexicalIndex:
        now = time.monotonic()
        if self._index is not None and now - self._checked_at < self._check_every_s:
            return self._index
        if self._index is not None and self._follow_in_background:
            self._follow()
            return self._index
        with self._lock:
            if self._index is not None and time.monotonic() - self._checked_at < self._check_every_s:
                return self._index
            self._load_published()
            self._checked_at = time.monotonic()
            return self._index

    def _load_published(self) -> None:
        """Under the lock: the snapshot of the generation the store holds now, loaded if it moved (the store
        reopens itself when it did)."""
        generation = self._store.generation()
        if self._index is None or self._index.generation != generation:
            self._index = self._refresh(generation)

    def _follow(self) -> None:
        """Start the background check, unless one is running."""
        with self._follower_starting:
            if self._follower is not None and self._follower.is_alive():
                return
            self._follower = threading.Thread(target=self._check, name="kilde-follow", daemon=True)
            self._follower.start()

    def _check(self) -> None:
        try:
            with self._lock:
                self._load_published()
            self._follow_error = None
        except Exception as exc:  # questions keep the snapshot they have; the next check tries again
            if str(exc) != self._follow_error:  # once, not every few seconds while an ingest resets the index
                logging.getLogger("kilde.lexical").warning(
                    "could not follow the index at %s: %s", self.root, exc
                )
            self._follow_error = str(exc)
        finally:
            self._checked_at = time.monotonic()

    def committed_rows(self, chunk_ids) -> dict[str, tuple[Chunk, ArticleMeta]] | None:
        """The rows of `chunk_ids` from the snapshot, when the snapshot is the store's committed state: the
        newest one published and no writer at work since (its rows are read first, so a writer that starts
        later changed nothing they hold). Chunks it does not hold are left out: with no writer at work, they
        are leftovers of an interrupted ingest. None: the caller reads the store."""
        if self._ingest_marker is None:
            return None
        index = self.current()
        if not index.has_rows:
            return None
        rows = {cid: (row.chunk, row.article) for cid in chunk_ids if (row := index.row(cid)) is not None}
        try:
            published = (self.root / "CURRENT").read_text().strip()
        except OSError:
            return None
        if published != index.folder or self._ingest_marker.exists():
            return None
        return rows

    def _refresh(self, generation: str) -> LexicalIndex:
        on_disk = LexicalIndex.load(self.root)
        if on_disk is not None and on_disk.generation == generation:
            return on_disk
        # A server-mode replica, or a snapshot from an interrupted ingest: rebuild from the store.
        if LexicalIndex.analysed_otherwise(self.root):
            logging.getLogger("kilde.lexical").warning(
                "the BM25 snapshot in %s splits text into terms as an earlier Kilde did: rebuilding it from the "
                "store, once (a large archive takes a while)",
                self.root,
            )
        index = LexicalIndex.build(self._store.iter_chunks(), generation)
        with contextlib.suppress(OSError):  # a full or read-only disk: the reader keeps its copy in memory
            index.save(self.root)  # no summary: `kilde stats` asks the store for what a reader rebuilt
        return index

    def rebuild(self) -> LexicalIndex:
        """Called by the single writer after a batch commits."""
        with self._lock:
            generation = uuid.uuid4().hex
            self._index = LexicalIndex.build(self._store.iter_chunks(), generation)
            self._index.save(self.root, summarise(self._store))
            # Published last: a reader that sees the new generation finds its snapshot already on disk.
            self._store.set_generation(generation)
            self._checked_at = 0.0
            return self._index
