"""What GET /readyz says of the index, at the cost of one store query a probe.

A load balancer or Kubernetes probes readiness every few seconds, and each probe shares the store with the
questions being answered. Whether the index is there is asked on every probe: a `stat` of its files
(`ensure_present`: an embedded index removed from disk) and one listing of the store's collections (`exists`:
an index reset by `kilde ingest --reset`, or a Chroma server that stopped answering). The figures a probe also
reports, the counts of articles and chunks (a full count of each collection) and the embedder, are read at most
every `refresh_s` seconds, and afresh after a probe that found the index missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from assistant.core.errors import IndexMissingError
from assistant.indexes.store import VectorStore

FACTS_TTL_S = 10.0  # as long as the model server's status is kept (assistant/indexes/model_server.py)


@dataclass(frozen=True)
class IndexFacts:
    articles: int
    chunks: int
    embedder: str | None


class IndexReadiness:
    """`check()`: the index's figures when it is ready; raises `IndexMissingError` (503 `not_ready`) when it
    is not, `StoreUnreachableError` (503 `not_ready` too) when its Chroma server does not answer, and whatever
    else the store raises when it cannot be asked. `clock`: seconds, for the refresh."""

    def __init__(
        self,
        store: VectorStore,
        refresh_s: float = FACTS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        # (when read, what was read); one tuple, replaced whole, so that concurrent probes need no lock
        self._facts: tuple[float, IndexFacts] | None = None

    def check(self) -> IndexFacts:
        try:
            return self._check()
        except Exception:
            self._facts = None  # an index that comes back may be another one: its figures are read anew
            raise

    def _check(self) -> IndexFacts:
        store = self._store
        store.ensure_present()  # a stat: an index removed while the server runs is "not_ready", saying so
        if not store.exists():
            raise IndexMissingError(store.location)
        now = self._clock()
        known = self._facts
        if known is not None and now - known[0] < self._refresh_s:
            return known[1]
        articles, chunks = store.counts()
        facts = IndexFacts(articles, chunks, store.recorded_embedder())
        self._facts = (now, facts)
        return facts
