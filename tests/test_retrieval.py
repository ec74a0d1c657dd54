"""The retriever's commit check against a real embedded Chroma: chunks whose article has no record at their
hash are skipped, however many of them rank first, and the hits keep the fused order."""

import numpy as np

from assistant.answering.retrieval import HybridRetriever
from assistant.core.types import Chunk, Filters
from assistant.indexes.lexical import LexicalSide
from assistant.indexes.store import ChromaStore
from assistant.testing.embedders import FixedQueryEmbedder
from ingest.articles import make_article

DIM = 8


def _write(store, number: int, similarity: float, committed: bool):
    article = make_article(
        title=f"Sak {number}",
        body=f"Artikkel nummer {number} om havna i Vestrevik.",
        given_id=f"sak-{number}",
        date="2025-01-01",
        source="Avis",
        language="nb",
    )
    chunk = Chunk(
        id=f"sak-{number}#0",
        article_id=article.id,
        position=0,
        text=article.text,
        start=0,
        end=len(article.text),
        token_count=8,
    )
    vector = np.zeros(DIM, dtype=np.float32)
    vector[0], vector[1] = similarity, np.sqrt(1 - similarity**2)
    store.upsert_chunks(article, [chunk], vector[None, :])
    if committed:
        store.upsert_article(article, "sig", 1)


def test_uncommitted_chunks_ranked_first_are_skipped_and_committed_ones_fill_the_answer(tmp_path):
    store = ChromaStore.open(tmp_path, None, "retrieval")
    store.ensure_embedder("fixed", DIM)
    # Nine half-written articles outrank everything (more than one read of k + 2 chunks), then six committed.
    for number in range(9):
        _write(store, number, 0.99 - number * 0.001, committed=False)
    for number in range(9, 15):
        _write(store, number, 0.90 - number * 0.01, committed=True)
    retriever = HybridRetriever(FixedQueryEmbedder(DIM), store, LexicalSide(store, tmp_path / "lexical"))

    retrieval = retriever.retrieve("Hva skjedde i havna?", k=5, filters=Filters(), mode="dense")

    assert [h.article.id for h in retrieval.hits] == [f"sak-{n}" for n in range(9, 14)]
    assert all(
        h.chunk.text == f"Artikkel nummer {h.article.id[4:]} om havna i Vestrevik." for h in retrieval.hits
    )
    assert retrieval.best_dense > 0.98  # the answerability signal still sees the best dense candidate


def test_no_hit_comes_from_beyond_the_window(tmp_path):
    store = ChromaStore.open(tmp_path, None, "retrieval")
    store.ensure_embedder("fixed", DIM)
    for number in range(16):  # the window for k=5 is 15 chunks: all of them half-written
        _write(store, number, 0.99 - number * 0.001, committed=False)
    _write(store, 20, 0.5, committed=True)
    retriever = HybridRetriever(FixedQueryEmbedder(DIM), store, LexicalSide(store, tmp_path / "lexical"))

    assert retriever.retrieve("Hva skjedde i havna?", k=5, filters=Filters(), mode="dense").hits == ()
