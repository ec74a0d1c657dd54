"""A server's reader follows the ingests published beside it from a thread of its own: the question that finds a
check due is answered from the snapshot already loaded, never made to wait for the new one, and the new one
serves the questions after it. A command that asks once loads it itself."""

import logging
import threading
import time

from assistant.core.errors import IndexMissingError
from assistant.core.types import NO_FILTERS
from assistant.indexes.lexical import LexicalSide
from assistant.indexes.store import ChromaStore
from assistant.testing.corpus import commit_numbered_article

DIM = 8


def _publish(store, root, number: int) -> str:
    """Commit one article and publish the snapshot a finished ingest leaves; its generation."""
    commit_numbered_article(store, number, DIM)
    return LexicalSide(store, root).rebuild().generation


def _found(index, number: int) -> bool:
    return f"sak-{number}#0" in {hit.chunk_id for hit in index.search(f"nummer {number}", 5, NO_FILTERS)}


def _store_and_first_snapshot(tmp_path):
    store = ChromaStore.open(tmp_path, None, "follow")
    store.ensure_embedder("fixed", DIM)
    root = tmp_path / "lexical"
    return store, root, _publish(store, root, 1)


def test_the_question_that_finds_a_new_snapshot_is_answered_from_the_loaded_one_while_a_thread_loads_it(
    tmp_path,
):
    store, root, first = _store_and_first_snapshot(tmp_path)
    reader = LexicalSide(store, root, check_every_s=0.0, follow_in_background=True)
    assert reader.current().generation == first  # the first snapshot is loaded by the question that needs it
    second = _publish(store, root, 2)

    loading, release = threading.Event(), threading.Event()
    refresh = reader._refresh

    def slow_refresh(generation):
        loading.set()
        assert release.wait(30)
        return refresh(generation)

    reader._refresh = slow_refresh
    answered_from = reader.current()  # would wait on `release` if the question loaded the snapshot itself
    assert loading.wait(10), "no thread began to load the published snapshot"
    assert answered_from.generation == first and not _found(answered_from, 2)
    assert reader.current().generation == first  # still loading: questions keep the loaded snapshot

    release.set()
    deadline = time.monotonic() + 10
    while reader.current().generation != second and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.current().generation == second
    assert _found(reader.current(), 2)


def test_a_command_that_asks_once_loads_the_new_snapshot_itself(tmp_path):
    store, root, first = _store_and_first_snapshot(tmp_path)
    reader = LexicalSide(store, root, check_every_s=0.0)
    assert reader.current().generation == first
    second = _publish(store, root, 2)

    assert reader.current().generation == second
    assert _found(reader.current(), 2)


def test_a_failed_check_keeps_the_loaded_snapshot_and_is_logged_once(tmp_path, monkeypatch, caplog):
    store, root, first = _store_and_first_snapshot(tmp_path)
    reader = LexicalSide(store, root, check_every_s=0.0, follow_in_background=True)
    reader.current()
    checks = []

    def missing():
        checks.append(1)
        raise IndexMissingError(str(tmp_path))

    monkeypatch.setattr(store, "generation", missing)
    with caplog.at_level(logging.WARNING, logger="kilde.lexical"):
        deadline = time.monotonic() + 10
        while len(checks) < 3 and time.monotonic() < deadline:
            assert reader.current().generation == first
            time.sleep(0.02)
        reader._follower.join(10)
    assert len(checks) >= 3
    warnings = [r for r in caplog.records if "could not follow the index" in r.getMessage()]
    assert len(warnings) == 1
