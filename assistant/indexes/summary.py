"""What an index holds (articles, chunks, embedder, languages, sources), written beside each lexical
snapshot by the writer, so `kilde stats` can answer without opening Chroma (importing it alone takes
most of a second)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

SUMMARY_FILE = "summary.json"


def summarise(store, committed_only: bool = False) -> dict:
    """Counts straight from the store, as the writer sees them after a commit. `committed_only`: after an
    ingest that was killed, whose chunks without a record at their hash (ingest/pipeline.py) no answer cites
    and the next ingest sweeps, count only the committed ones (it reads every chunk's metadata)."""
    articles, chunks = store.counts()
    stored = store.stored_articles()
    if committed_only:
        committed = {article_id: s.meta.content_hash for article_id, s in stored.items()}
        chunks = sum(committed.get(owner) == digest for owner, digest in store.chunk_owners().values())
    stored = stored.values()
    return {
        "articles": articles,
        "chunks": chunks,
        "embedder": store.recorded_embedder(),
        "languages": dict(Counter(s.meta.language for s in stored)),
        "sources": dict(Counter(s.meta.source or "(none)" for s in stored)),
    }


def write_summary(folder: Path, summary: dict) -> None:
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")


def read_summary(lexical_root: Path) -> dict | None:
    """The summary of the current snapshot, or None when there is none (an index from before summaries,
    or no local snapshot at all)."""
    try:
        folder = lexical_root / (lexical_root / "CURRENT").read_text().strip()
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = {"articles", "chunks", "embedder", "languages", "sources"}
    return summary if isinstance(summary, dict) and keys <= set(summary) else None
