"""The embedding of every stored chunk's sentences, computed at ingest and looked up by text at query time.

The reranker and the sentence picker compare the question with each sentence of about 55 candidate chunks;
embedding those at query time would take seconds. The single ingest writer appends the vectors of new
sentences before it writes the chunks that hold them, so a committed chunk's sentences are always here.

Two append-only files: `vectors.f16` (float16 rows) and `keys.u64` (the first 8 bytes of each sentence's
SHA-256). A row's vector is written and flushed before its key, so a key always has its vector; a crash can
leave a torn tail, which readers ignore. Sentences of deleted chunks stay as unused rows. Readers map the
files and see rows appended later (a server answering while an ingest writes)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.core.errors import ConfigError
from assistant.core.sentences import sentence_spans

KEYS = "keys.u64"
VECTORS = "vectors.f16"
HEADER = "log.json"
COMPLETE = "complete"  # the store generation at which every stored chunk's sentences were known to be here
FORMAT = 1


def sentence_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "little")


def chunk_sentences(text: str) -> list[str]:
    """The sentences of a chunk's text as the features and the answer quote them."""
    return [text[start:end] for start, end in sentence_spans(text)]


class SentenceVectorLog:
    """One index's sentence vectors by text. `lookup` may be called from many threads and processes while one
    writer (the ingest, holding its lock) calls `append`."""

    def __init__(self, root: Path, embedder_name: str, dim: int):
        self.root = Path(root)
        self.embedder_name = embedder_name
        self.dim = dim
        self._lock = threading.Lock()
        self._size = (-1, -1)  # (keys bytes, vectors bytes) last mapped
        self._sorted_keys = np.zeros(0, dtype=np.uint64)
        self._rows = np.zeros(0, dtype=np.int64)
        self._vectors: np.ndarray = np.zeros((0, dim), dtype=np.float16)
        self.usable = True  # False when the files on disk belong to another embedder
        self._check_header()

    # -- reading ---------------------------------------------------------------------------------------

    def _check_header(self) -> None:
        try:
            header = json.loads((self.root / HEADER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{self.root / HEADER} is unreadable ({exc}); delete {self.root} and run `kilde ingest` "
                "to compute the sentence vectors again"
            ) from None
        if header != self._header():
            self.usable = False

    def _header(self) -> dict:
        return {"format": FORMAT, "embedder": self.embedder_name, "dim": self.dim}

    def _refresh(self) -> None:
        try:
            size = ((self.root / KEYS).stat().st_size, (self.root / VECTORS).stat().st_size)
        except FileNotFoundError:
            size = (0, 0)
        if size == self._size or not self.usable:
            return
        row_bytes = 2 * self.dim
        count = min(size[0] // 8, size[1] // row_bytes)
        if count:
            keys = np.fromfile(self.root / KEYS, dtype=np.uint64, count=count)
            self._vectors = np.memmap(
                self.root / VECTORS, dtype=np.float16, mode="r", shape=(count, self.dim)
            )
            self._rows = np.argsort(keys, kind="stable")
            self._sorted_keys = keys[self._rows]
        self._size = size

    def __len__(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._sorted_keys)

    def lookup(self, keys: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(float32 vectors, one row per key: zeros where missing; a bool mask of the keys found)."""
        probe = np.asarray(keys, dtype=np.uint64)
        out = np.zeros((len(probe), self.dim), dtype=np.float32)
        with self._lock:
            self._refresh()
            sorted_keys, rows, vectors = self._sorted_keys, self._rows, self._vectors
        if not len(probe) or not len(sorted_keys):
            return out, np.zeros(len(probe), dtype=bool)
        at = np.minimum(np.searchsorted(sorted_keys, probe), len(sorted_keys) - 1)
        found = sorted_keys[at] == probe
        if found.any():
            out[found] = vectors[rows[at[found]]]
        return out, found

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts with no vector yet, in first-seen order."""
        distinct = list(dict.fromkeys(texts))
        _, found = self.lookup([sentence_key(t) for t in distinct])
        return [t for t, f in zip(distinct, found, strict=True) if not f]

    # -- writing (the ingest writer only) ---------------------------------------------------------------

    def append(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} sentences but {len(vectors)} vectors")
        if not len(texts):
            return
        if not self.usable:
            raise ConfigError(
                f"{self.root} holds sentence vectors of another embedder; delete it and run `kilde ingest`"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / HEADER).exists():
            _write_atomically(self.root / HEADER, json.dumps(self._header()).encode())
        keys = np.array([sentence_key(t) for t in texts], dtype=np.uint64)
        rows = np.asarray(vectors, dtype=np.float32).astype(np.float16)
        self._truncate_torn_tail()
        for name, data in ((VECTORS, rows), (KEYS, keys)):  # vectors first: a key always has its vector
            with open(self.root / name, "ab") as fh:
                fh.write(data.tobytes())
                fh.flush()
                os.fsync(fh.fileno())

    def _truncate_torn_tail(self) -> None:
        """Cuts what a killed writer left half-written, so new rows line up with their keys again."""
        try:
            keys_size = (self.root / KEYS).stat().st_size
            vectors_size = (self.root / VECTORS).stat().st_size
        except FileNotFoundError:
            keys_size = vectors_size = 0
        row_bytes = 2 * self.dim
        count = min(keys_size // 8, vectors_size // row_bytes)
        for name, size in ((KEYS, count * 8), (VECTORS, count * row_bytes)):
            path = self.root / name
            if path.exists() and path.stat().st_size != size:
                os.truncate(path, size)

    def complete_at(self) -> str | None:
        try:
            return (self.root / COMPLETE).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def mark_complete(self, generation: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.root / COMPLETE, generation.encode())


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
