"""The offline answerer: picks the sentences of the top passages that best answer the question and
quotes them verbatim, each with a citation that carries its exact offsets."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from assistant.embeddings import Embedder
from assistant.lexical import analyse_query
from assistant.types import Citation, Hit, Sentence
from ingest.sentences import sentence_spans

NOT_FOUND = {
    "en": "I couldn't find this in the archive.",
    "nb": "Jeg fant ikke dette i arkivet.",
    "nn": "Eg fann ikkje dette i arkivet.",
}


@dataclass(frozen=True)
class Candidate:
    hit_index: int
    start: int  # offsets in the article text
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Extract:
    answer: str
    citations: tuple[Citation, ...]
    sentences: tuple[Sentence, ...]


class SentenceVectors:
    """An LRU of sentence embeddings: popular passages are scored without re-embedding."""

    def __init__(self, embedder: Embedder, size: int = 20000):
        self._embedder = embedder
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._embedder.embed_passages(missing)
            with self._lock:
                for text, vector in zip(missing, vectors):
                    self._cache[text] = vector
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            for text in texts:
                self._cache.move_to_end(text)
            return np.vstack([self._cache[t] for t in texts])


class ExtractiveAnswerer:
    def __init__(self, embedder: Embedder, max_sentences: int = 2, passages_scored: int = 2,
                 lexical_weight: float = 0.25, second_margin: float = 0.03):
        self.vectors = SentenceVectors(embedder)
        self.max_sentences = max_sentences
        self.passages_scored = passages_scored
        self.lexical_weight = lexical_weight
        self.second_margin = second_margin

    def candidates(self, question: str, hits: tuple[Hit, ...], query_vector: np.ndarray | None) -> list[Candidate]:
        spans: list[tuple[int, int, int, str]] = []
        for index, hit in enumerate(hits[: self.passages_scored]):
            text = hit.chunk.text
            for start, end in sentence_spans(text):
                if end - start >= 15:
                    spans.append((index, hit.chunk.start + start, hit.chunk.start + end, text[start:end]))
        if not spans:
            return []
        query_terms = set(analyse_query(question))
        dense = np.zeros(len(spans))
        if query_vector is not None:
            dense = self.vectors.get([s[3] for s in spans]) @ query_vector
        out = []
        for (index, start, end, text), similarity in zip(spans, dense):
            terms = set(analyse_query(text))
            overlap = len(query_terms & terms) / max(len(query_terms), 1)
            prior = 0.02 * (self.passages_scored - index)  # the better-ranked passage wins ties
            out.append(Candidate(index, start, end, text, float(similarity) + self.lexical_weight * overlap + prior))
        return sorted(out, key=lambda c: -c.score)

    def answer(self, question: str, hits: tuple[Hit, ...], query_vector: np.ndarray | None) -> Extract:
        ranked = self.candidates(question, hits, query_vector)
        if not ranked:
            return Extract("", (), ())
        chosen = [ranked[0]]
        for candidate in ranked[1:]:
            if len(chosen) >= self.max_sentences or candidate.score < ranked[0].score - self.second_margin:
                break
            if all(abs(candidate.start - c.start) > 0 for c in chosen):
                chosen.append(candidate)
        chosen.sort(key=lambda c: (c.hit_index, c.start))

        # One number per quote, so every [n] leads to exactly one highlighted passage.
        citations: list[Citation] = []
        sentences: list[Sentence] = []
        for n, candidate in enumerate(chosen, 1):
            hit = hits[candidate.hit_index]
            citations.append(Citation(
                n=n, article_id=hit.article.id, title=hit.article.title, date=hit.article.date,
                source=hit.article.source, url=hit.article.url, chunk_id=hit.chunk.id, quote=candidate.text,
                start=candidate.start, end=candidate.end, score=round(candidate.score, 4)))
            sentences.append(Sentence(text=candidate.text, citations=(n,), supported=True, support_score=1.0))
        answer = " ".join(f"{s.text} [{s.citations[0]}]" for s in sentences)
        return Extract(answer, tuple(citations), tuple(sentences))
