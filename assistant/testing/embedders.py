"""Deterministic embedders for tests and benchmarks. They follow the `Embedder` protocol of
`assistant.indexes.embeddings` (name, dim, embed_query, embed_passages)."""

from __future__ import annotations

import numpy as np


class CountingEmbedder:
    """Wraps a real embedder and counts the passages it was asked to embed."""

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.passages = 0

    def embed_passages(self, texts):
        self.passages += len(texts)
        return self.inner.embed_passages(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


class FixedQueryEmbedder:
    """Every question embeds to the first axis, so a stored chunk's rank is set by its vector alone.
    Embeds no passages: a test that needs them writes its vectors itself."""

    name = "fixed"

    def __init__(self, dim: int = 8):
        self.dim = dim

    def embed_query(self, text):
        return np.eye(self.dim, dtype=np.float32)[0]

    def embed_passages(self, texts):
        raise AssertionError("FixedQueryEmbedder embeds no passages")


class ForeignEmbedder:
    """Claims another model's name and embeds nothing: for checks that refuse an index built by a
    different embedder before anything is embedded."""

    def __init__(self, name: str = "other/model", dim: int = 384):
        self.name, self.dim = name, dim

    def embed_query(self, text):
        raise AssertionError(f"{self.name} must be refused before it embeds a query")

    def embed_passages(self, texts):
        raise AssertionError(f"{self.name} must be refused before it embeds passages")
