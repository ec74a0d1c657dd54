"""What an index holds, read back from disk: the crash-safety test and `bench/crash_trials.py` compare an
interrupted-then-rerun ingest with an uninterrupted one through these snapshots."""

from __future__ import annotations

from assistant.indexes.lexical import LexicalIndex
from assistant.indexes.store import ChromaStore
from assistant.indexes.summary import read_summary, summarise

HNSW_LOAD_ERROR = "Error loading hnsw index"


def snapshot(settings) -> dict:
    """Article ids with their committed hashes, chunk ids, counts, and whether the published lexical
        snapshot is the one for the store's current generation and holds exactly the store's chunks, and whether
    the summary beside it tells the store's counts.
        Reads only: no embedder is needed."""
    store = ChromaStore.open(settings.data_dir, settings.chroma_url, settings.collection)
    stored = store.stored_articles()
    owners = store.chunk_owners()
    lexical = LexicalIndex.load(settings.lexical_root)
    return {
        "articles": sorted((aid, s.meta.content_hash) for aid, s in stored.items()),
        "chunks": sorted(owners),
        "counts": store.counts(),
        "lexical_matches_store": lexical is not None
        and lexical.generation == store.generation()
        and sorted(lexical.chunk_ids) == sorted(owners),
        "summary_matches_store": read_summary(settings.lexical_root) == summarise(store),
    }


def differences(got: dict, want: dict) -> list[str]:
    """Human-readable differences between two snapshots (empty when they are equal)."""
    problems = []
    got_articles, want_articles = dict(got["articles"]), dict(want["articles"])
    if got_articles != want_articles:
        missing = sorted(set(want_articles) - set(got_articles))
        extra = sorted(set(got_articles) - set(want_articles))
        both = got_articles.keys() & want_articles.keys()
        stale = sorted(a for a in both if got_articles[a] != want_articles[a])
        problems.append(f"articles: missing {missing}, extra {extra}, other hash {stale}")
    if got["chunks"] != want["chunks"]:
        problems.append(
            f"chunks: {len(set(want['chunks']) - set(got['chunks']))} missing, "
            f"{len(set(got['chunks']) - set(want['chunks']))} extra"
        )
    if got["counts"] != want["counts"]:
        problems.append(f"counts (articles, chunks): {got['counts']} instead of {want['counts']}")
    if not got["lexical_matches_store"]:
        problems.append("lexical snapshot does not match the store (generation or chunk ids)")
    if not got["summary_matches_store"]:
        problems.append("the index summary `kilde stats` reads does not match the store")
    return problems
