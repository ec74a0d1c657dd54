"""Passage embeddings computed once and kept in a file, looked up by embedder name and text digest.

`make demo` ingests the sample corpus with the file shipped in `corpus/.embeddings/`, so a first run
does not spend minutes re-embedding what every machine embeds alike; any text the file lacks (a
user's own articles, an edited sample) is embedded by the model as usual. `make embedding-cache`
rebuilds the file."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.core.errors import ConfigError
from assistant.indexes.embeddings import Embedder

FORMAT = 1
KEY_BYTES = 16


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:KEY_BYTES]


class EmbeddingCache:
    """One embedder's vectors by text digest; read from `path` when it exists, written back by `save()` with what
    it held and what this run embedded."""

    def __init__(self, path: Path, embedder_name: str, dim: int):
        self.path = Path(path)
        self.embedder_name = embedder_name
        self.dim = dim
        self.vectors: dict[bytes, np.ndarray] = {}
        # Sentence vectors (`assistant.indexes.sentence_vectors`), kept in float16 as the index keeps them.
        self.sentences: dict[bytes, np.ndarray] = {}
        self.mismatch: str | None = None  # why the file's entries do not apply, if they don't
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                fmt, name = int(data["format"]), str(data["embedder"])
                keys, vectors = data["keys"], data["vectors"]
                # Files written before sentence vectors were cached have no such section.
                sentence_keys = data["sentence_keys"] if "sentence_keys" in data else keys[:0]
                sentence_vectors = data["sentence_vectors"] if "sentence_keys" in data else vectors[:0]
        # An empty file is numpy's EOFError; one cut short or altered, zipfile's or zlib's error
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise self._damaged(str(exc) or type(exc).__name__) from None
        for what, table, matrix in (
            ("passage", keys, vectors),
            ("sentence", sentence_keys, sentence_vectors),
        ):
            # Keys of another length never match, vectors of no row match each other or no key, and a nan or inf
            # vector would be stored in the index as it is
            if table.shape[1:] != (KEY_BYTES,) or matrix.ndim != 2 or len(table) != len(matrix):
                raise self._damaged(f"its {what} keys and vectors do not match")
            if matrix.dtype.kind != "f" or not np.isfinite(matrix).all():
                raise self._damaged(f"its {what} vectors are not all finite numbers")
        if fmt != FORMAT or name != self.embedder_name or vectors.shape[1:] != (self.dim,):
            self.mismatch = f"{self.path} holds {name!r} vectors (format {fmt}), not {self.embedder_name!r}"
            return
        self.vectors = {bytes(k): v for k, v in zip(keys, vectors.astype(np.float32), strict=True)}
        if sentence_vectors.shape[1:] == (self.dim,):
            self.sentences = {
                bytes(k): v for k, v in zip(sentence_keys, sentence_vectors.astype(np.float16), strict=True)
            }

    def _damaged(self, why: str) -> ConfigError:
        return ConfigError(
            f"{self.path} is not a Kilde embedding cache, or is damaged ({why}); rebuild it with "
            "`make embedding-cache` or unset KILDE_EMBEDDING_CACHE"
        )

    def check_writable(self) -> None:
        """A file of another embedder's vectors is never replaced by this one's (they were all lost)."""
        if self.mismatch:
            raise ConfigError(
                f"--save-embedding-cache: {self.mismatch}, which saving would replace; name another file"
            )

    def save(self) -> int:
        """Writes every entry, those the file held and those this run embedded, atomically; returns how many. It
        wrote only the entries this run used, so an ingest that embedded nothing (every article unchanged) left
        the file empty."""
        self.check_writable()
        keys, matrix = self._rows(self.vectors, np.float32)
        sentence_keys, sentence_matrix = self._rows(self.sentences, np.float16)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".embeddings-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(
                    fh,
                    format=np.int64(FORMAT),
                    embedder=np.str_(self.embedder_name),
                    keys=keys,
                    vectors=matrix,
                    sentence_keys=sentence_keys,
                    sentence_vectors=sentence_matrix,
                )
            os.chmod(tmp, 0o644)  # a shipped file: readable by whoever runs Kilde
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return len(keys) + len(sentence_keys)

    def _rows(self, table: dict[bytes, np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
        """(keys as rows of bytes, vectors as `dtype`) of the entries of `table`, in key order."""
        keys = sorted(table)
        matrix = np.vstack([table[k] for k in keys]) if keys else np.zeros((0, self.dim))
        return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES), matrix.astype(dtype)


class CachedEmbedder:
    """An `Embedder` that answers passages from an `EmbeddingCache` and embeds only what it lacks.
    Queries always go to the model. `hits` and `misses` count passages, for the ingest report."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache):
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self.sentence_hits = 0
        self.sentence_misses = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        vectors, missing = self._answer(texts, self.cache.vectors, np.float32)
        with self._lock:
            self.hits += len(texts) - missing
            self.misses += missing
        return vectors

    def embed_sentences(self, texts: Sequence[str]) -> np.ndarray:
        """`embed_passages` for the index's sentence vectors, answered from the cache's float16 section."""
        vectors, missing = self._answer(texts, self.cache.sentences, np.float16)
        with self._lock:
            self.sentence_hits += len(texts) - missing
            self.sentence_misses += missing
        return vectors

    def _answer(self, texts: Sequence[str], table: dict[bytes, np.ndarray], dtype) -> tuple[np.ndarray, int]:
        """float32 vectors of `texts` from `table`, the ones it lacks embedded and kept there as `dtype`; also
        how many it lacked."""
        keys = [text_key(t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in table]
        if missing:
            fresh = self.inner.embed_passages([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    table[keys[i]] = np.asarray(vector, dtype=dtype)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), 0
        return np.vstack([table[k] for k in keys]).astype(np.float32, copy=False), len(missing)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)
