"""Hybrid retrieval: dense (embedder through the store) and BM25, fused by reciprocal rank.

Hits from articles that are not committed (an ingest still writing, or killed half-way) are dropped,
so nothing half-written is ever cited."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from assistant.core.errors import FilterMatchesNothingError, clipped
from assistant.core.types import NO_FILTERS, ArticleMeta, Chunk, Filters, Hit
from assistant.indexes.embeddings import Embedder
from assistant.indexes.lexical import LexicalSide
from assistant.indexes.store import VectorStore

# The one embedder serves every client in turn and its cost grows faster than the text: a 4,000-character
# query takes ~30x a short question. The dense side sees the question's last 400 characters (where a
# condensed follow-up keeps the question itself); BM25 still reads all of it.
MAX_EMBEDDED_QUERY_CHARS = 400
SOURCES_NAMED = 10  # of the archive's sources, in the error for a source filter that names none of them


def embedded_part(query: str) -> str:
    return query if len(query) <= MAX_EMBEDDED_QUERY_CHARS else query[-MAX_EMBEDDED_QUERY_CHARS:]


@dataclass(frozen=True)
class Retrieval:
    hits: tuple[Hit, ...]
    query_vector: np.ndarray | None
    best_dense: float  # highest cosine similarity among dense candidates (answerability signal)
    timings_ms: dict[str, float]


class HybridRetriever:
    """Weighted reciprocal-rank fusion. A BM25 match in the question's own language is strong evidence;
    across languages (an English question over Norwegian text) only names and numbers can match, so
    such hits count for less. The weights are tuned on the validation sets (evals/RESULTS.md)."""

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        lexical: LexicalSide,
        candidates: int = 30,
        rrf_k: int = 60,
        lexical_same_language: float = 1.0,
        lexical_cross_language: float = 1.0,
    ):
        self.embedder = embedder
        self.store = store
        self.lexical = lexical
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.lexical_same_language = lexical_same_language
        self.lexical_cross_language = lexical_cross_language
        # BM25 scoring runs beside the dense query, both in native code that releases the GIL. Not beside the
        # embedding: the embedder's threads want every core, and sharing them slowed it by more than BM25
        # costs (bench/RESULTS-scale.md).
        self._lexical_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kilde-bm25")

    def filter_values(self) -> tuple[list[str], list[str]]:
        """The sources and article languages the archive holds now, which a filter can name: read from the BM25
        snapshot, which follows every ingest, not from the store's article list (a full read at a million chunks)."""
        index = self.lexical.current()
        return [s for s in index.source_names if s], index.language_names

    def retrieve(
        self,
        query: str,
        k: int,
        filters: Filters = NO_FILTERS,
        mode: str = "hybrid",
        lexical_query: str | None = None,
        candidates: int | None = None,
        query_vector: np.ndarray | None = None,
    ) -> Retrieval:
        """`lexical_query`: what the BM25 side searches instead of `query` (an English question with its
        dictionary translation, `assistant.answering.rerank`); `candidates`: per side, instead of the configured
        number; `query_vector`: `query`'s embedding when a search moments before computed it (a follow-up
        searched again within one article), so it is not embedded twice."""
        from assistant.core.language import detect_language, language_group

        if filters.sources:
            check_sources(filters.sources, self.lexical.current().source_names)
        if filters.languages:
            check_languages(filters.languages, self.lexical.current().language_names)
        candidates = candidates or self.candidates
        timings: dict[str, float] = {}
        # Language detection is only needed when the weights differ; equal weights skip it on the hot path.
        weighted = self.lexical_same_language != self.lexical_cross_language
        query_group = language_group(detect_language(query)) if weighted else ""
        fused: dict[str, float] = {}
        dense_scores: dict[str, float] = {}
        lexical_scores: dict[str, float] = {}
        vector = None
        best_dense = 0.0

        if mode in ("hybrid", "dense"):
            t0 = time.perf_counter()
            vector = (
                query_vector if query_vector is not None else self.embedder.embed_query(embedded_part(query))
            )
            timings["embed"] = _ms(t0)

        lexical_job = None
        if mode in ("hybrid", "bm25"):
            lexical_job = self._lexical_pool.submit(
                self._lexical_search, lexical_query or query, filters, candidates
            )

        if vector is not None:
            t0 = time.perf_counter()
            dense = self.store.nearest(vector, candidates, filters)
            timings["dense"] = _ms(t0)
            for rank, match in enumerate(dense):
                fused[match.chunk_id] = fused.get(match.chunk_id, 0.0) + 1.0 / (self.rrf_k + rank + 1)
                dense_scores[match.chunk_id] = match.similarity
            best_dense = max(dense_scores.values(), default=0.0)

        if lexical_job is not None:
            t0 = time.perf_counter()
            lexical, timings["lexical"] = lexical_job.result()
            timings["lexical_wait"] = _ms(t0)
            for rank, hit in enumerate(lexical):
                weight = (
                    self.lexical_same_language
                    if not weighted or language_group(hit.language) == query_group
                    else self.lexical_cross_language
                )
                fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight / (self.rrf_k + rank + 1)
                lexical_scores[hit.chunk_id] = hit.score

        t0 = time.perf_counter()
        ranked = sorted(fused, key=lambda cid: (-fused[cid], cid))
        hits = self._committed_hits(ranked, k, fused, dense_scores, lexical_scores)
        timings["fuse"] = _ms(t0)
        return Retrieval(tuple(hits), vector, best_dense, timings)

    def _lexical_search(self, query: str, filters: Filters, candidates: int):
        t0 = time.perf_counter()
        hits = self.lexical.current().search(query, candidates, filters)
        return hits, _ms(t0)

    def _committed_hits(self, ranked, k, fused, dense_scores, lexical_scores) -> list[Hit]:
        """The first k chunks of `ranked` whose article is committed at their hash: from the lexical snapshot's
        rows when they are the committed state (`LexicalSide.committed_rows`), else from the store, a few past
        k at a time (each row read costs ~0.2 ms of metadata). Never further down than `window`, however many
        uncommitted ones there are."""
        step, window = k + 2, ranked[: max(k * 3, k + 10)]
        snapshot = self.lexical.committed_rows(window)
        if snapshot is not None:  # the lexical snapshot holds the committed rows: no store read
            held = [cid for cid in window if cid in snapshot][:k]
            return [self._hit(snapshot[cid], cid, fused, dense_scores, lexical_scores) for cid in held]
        rows: dict[str, tuple[Chunk, ArticleMeta]] = {}
        committed: dict[str, str] = {}  # article id -> committed content hash, "" when it has no record
        hits: list[Hit] = []
        for start in range(0, len(window), step):
            batch = window[start : start + step]
            rows.update(self.store.get_chunks(batch))
            articles = {rows[cid][1].id for cid in batch if cid in rows} - committed.keys()
            if articles:
                committed.update(dict.fromkeys(articles, ""))
                committed.update(self.store.article_hashes(sorted(articles)))
            for cid in batch:
                if cid not in rows:
                    continue
                meta = rows[cid][1]
                if committed[meta.id] != meta.content_hash:
                    continue
                hits.append(self._hit(rows[cid], cid, fused, dense_scores, lexical_scores))
                if len(hits) == k:
                    return hits
        return hits

    @staticmethod
    def _hit(row: tuple[Chunk, ArticleMeta], cid: str, fused, dense_scores, lexical_scores) -> Hit:
        return Hit(
            chunk=row[0],
            article=row[1],
            score=fused[cid],
            dense_score=dense_scores.get(cid),
            lexical_score=lexical_scores.get(cid),
        )


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def check_sources(wanted: tuple[str, ...], known: list[str]) -> None:
    """A source filter naming a source no article has would find nothing, and every answer would be "not in the
    archive", for a typo ("Geopolitka") or another archive's source: it is refused, naming the sources there are."""
    # An empty name (`--source=`) is no source, though articles without one are listed under "".
    missing = [s for s in wanted if not s.strip() or s not in known]
    if not missing:
        return
    raise filter_matches_nothing(
        "source filter",
        missing[0],
        [s for s in known if s],
        "no article has the source",
        "the archive's sources",
        "no article of the archive names a source",
        named_at_most=SOURCES_NAMED,
    )


def check_languages(wanted: tuple[str, ...], known: list[str]) -> None:
    """A language filter naming a language no article is in ("en" in a Norwegian archive) would find nothing, as a
    source no article has would: it is refused the same way, naming the languages there are."""
    missing = [x for x in wanted if x not in known]
    if not missing:
        return
    raise filter_matches_nothing(
        "language filter",
        missing[0],
        [x for x in known if x],
        "no article is in the language",
        "the archive's languages",
        "the archive holds no article",
    )


def filter_matches_nothing(
    field: str,
    value: str,
    names: list[str],
    none_has: str,
    listed_as: str,
    empty: str,
    named_at_most: int | None = None,
) -> FilterMatchesNothingError:
    """The refusal of a filter `value` no article has: "{none_has} 'value'; {listed_as}: 'a', 'b' and 3 more" (at
    most `named_at_most` of the archive's `names`), or "{none_has} 'value'; {empty}" where it has none."""
    named = tuple(clipped(x) for x in names[:named_at_most])
    more = len(names) - len(named)
    listed = ", ".join(repr(x) for x in named) + (f" and {more} more" if more else "")
    shown = clipped(value)
    return FilterMatchesNothingError(
        field,
        f"{none_has} {shown!r}; " + (f"{listed_as}: {listed}" if names else empty),
        value=shown,
        known=named,
        more=more,
    )
