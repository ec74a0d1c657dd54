"""GET /readyz's check of the index (ui/readiness.py), on a real embedded Chroma store opened as a server opens it:
one store query a probe, the counts read again only every few seconds, and "not ready" at the very next probe
when the index is removed, reset or its Chroma server stops."""

from __future__ import annotations

import shutil

import pytest

from assistant.core.errors import IndexGoneError, IndexMissingError, StoreUnreachableError
from assistant.indexes.store import ChromaStore, VectorStore
from assistant.testing.corpus import commit_numbered_article
from assistant.testing.servers import chroma_server, free_port
from ui.readiness import IndexFacts, IndexReadiness

DIM = 8
NAME = "ready"
# Every method of the store's contract that reads Chroma (all but `ensure_present`, a stat, and the writes).
READS = (
    "exists",
    "recorded_embedder",
    "chunk_ids_of",
    "get_article",
    "stored_articles",
    "nearest",
    "iter_chunks",
    "chunk_owners",
    "counts",
    "generation",
    "article_hashes",
    "get_chunks",
)
assert set(READS) <= set(vars(VectorStore))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _writer(store: ChromaStore, articles: int) -> ChromaStore:
    store.ensure_embedder("fixed", DIM)
    for number in range(1, articles + 1):
        commit_numbered_article(store, number, DIM)
    return store


def _counting(store: ChromaStore, monkeypatch) -> list[str]:
    """The names of the store's reads, in the order they are called (a read that calls another counts both)."""
    calls: list[str] = []
    for name in READS:
        method = getattr(store, name)

        def counted(*args, _name=name, _method=method, **kwargs):
            calls.append(_name)
            return _method(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    return calls


def test_a_probe_asks_the_store_one_query_and_reads_the_counts_again_only_every_few_seconds(
    tmp_path, monkeypatch
):
    writer = _writer(ChromaStore.open(tmp_path, None, NAME), articles=2)
    reader = ChromaStore.open(tmp_path, None, NAME, create=False)  # as `kilde serve` opens it
    clock = Clock()
    readiness = IndexReadiness(reader, refresh_s=10.0, clock=clock)
    calls = _counting(reader, monkeypatch)

    assert readiness.check() == IndexFacts(articles=2, chunks=2, embedder="fixed")
    first = len(calls)
    assert first > 1  # the figures: counts and the embedder
    per_probe = []
    for _ in range(5):
        clock.now += 1.0
        before = len(calls)
        assert readiness.check() == IndexFacts(articles=2, chunks=2, embedder="fixed")
        per_probe.append(calls[before:])
    assert per_probe == [["exists"]] * 5  # was `first` queries on every probe

    commit_numbered_article(writer, 3, DIM)
    clock.now += 10.0  # the figures are a few seconds old at most
    assert readiness.check() == IndexFacts(articles=3, chunks=3, embedder="fixed")


def test_an_index_removed_from_disk_is_not_ready_at_the_next_probe_while_its_figures_are_still_fresh(
    tmp_path,
):
    _writer(ChromaStore.open(tmp_path, None, NAME), articles=2)
    reader = ChromaStore.open(tmp_path, None, NAME, create=False)
    readiness = IndexReadiness(reader, refresh_s=10.0, clock=Clock())
    assert readiness.check().articles == 2

    shutil.rmtree(tmp_path / "chroma")
    for _ in range(2):
        with pytest.raises(IndexGoneError, match="kilde ingest"):
            readiness.check()


def test_an_index_reset_is_not_ready_at_the_next_probe_and_the_index_built_again_is_counted_afresh(tmp_path):
    writer = _writer(ChromaStore.open(tmp_path, None, NAME), articles=2)
    reader = ChromaStore.open(tmp_path, None, NAME, create=False)
    readiness = IndexReadiness(reader, refresh_s=10.0, clock=Clock())  # the clock stands still
    assert readiness.check().articles == 2

    writer.reset()  # `kilde ingest --reset`, before it writes again
    with pytest.raises(IndexMissingError, match="kilde ingest"):
        readiness.check()

    _writer(writer, articles=1)  # built again, smaller
    assert readiness.check() == IndexFacts(articles=1, chunks=1, embedder="fixed")


@pytest.mark.integration
def test_a_chroma_server_that_stops_is_not_ready_at_the_next_probe_and_ready_once_it_is_back(tmp_path):
    port = free_port()
    with chroma_server(tmp_path / "db", port=port) as url:
        store = _writer(ChromaStore.open(tmp_path, url, NAME), articles=2)
        readiness = IndexReadiness(store, refresh_s=10.0, clock=Clock())
        assert readiness.check().articles == 2
    # 503 `not_ready` from /readyz, naming the server; not the HTTP client's ConnectError, a 500
    with pytest.raises(StoreUnreachableError, match=f"Chroma server at {url} cannot be reached"):
        readiness.check()
    with chroma_server(tmp_path / "db", port=port):  # the same server, started again
        assert readiness.check() == IndexFacts(articles=2, chunks=2, embedder="fixed")
