"""One contract, every backend: embedded Chroma and a real `chroma run` server pass the same suite."""

import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from assistant.core.errors import (
    EmbedderMismatchError,
    IndexGoneError,
    IndexMissingError,
    StoreBusyError,
    StoreFailedError,
    StoreRefusedError,
    StoreUnreachableError,
)
from assistant.core.types import Chunk, Filters
from assistant.indexes.store import ChromaStore, VectorStore
from assistant.testing.corpus import ROOT
from assistant.testing.servers import FailingProxy, chroma_process, chroma_server, free_port, hung
from ingest.articles import make_article
from ingest.chunking import chunk_id

DIM = 8


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.integration)])
def open_store(request, tmp_path):
    """Opens a client of one store: each call another client, as another process would hold."""
    url, name = None, "contract"
    if request.param == "server":
        url = request.getfixturevalue("chroma_url")
        name = f"contract-{tmp_path.name[-20:].replace('_', '-')}"
    yield lambda: ChromaStore.open(tmp_path, url, name)
    if url:
        ChromaStore.open(tmp_path, url, name).reset()


@pytest.fixture
def store(open_store):
    return open_store()


def _article(article_id, text, date="2024-11-27", source="Avis", language="nb"):
    return make_article(
        title=f"Tittel {article_id}",
        body=text,
        given_id=article_id,
        date=date,
        source=source,
        language=language,
    )


def _chunks(article, n=2):
    step = len(article.text) // n
    return [
        Chunk(
            id=chunk_id(article.id, i, article.text[i * step : (i + 1) * step]),
            article_id=article.id,
            position=i,
            text=article.text[i * step : (i + 1) * step],
            start=i * step,
            end=(i + 1) * step,
            token_count=10,
        )
        for i in range(n)
    ]


def _vectors(n, seed):
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _write(store, article, seed):
    chunks = _chunks(article)
    vectors = _vectors(len(chunks), seed)
    store.upsert_chunks(article, chunks, vectors)
    store.upsert_article(article, "sig", len(chunks))
    return chunks, vectors


def test_an_empty_store_has_no_nearest_chunks(store):
    store.ensure_embedder("m", DIM)
    assert store.nearest(_vectors(1, 0)[0], 30, Filters()) == []


def test_missing_index_is_reported_with_the_command_that_builds_it(store):
    assert not store.exists()
    with pytest.raises(IndexMissingError, match="kilde ingest"):
        store.counts()


def test_embedder_is_recorded_and_never_mixed(store):
    store.ensure_embedder("model-a", DIM)
    store.ensure_embedder("model-a", DIM)
    assert store.recorded_embedder() == "model-a"
    with pytest.raises(EmbedderMismatchError, match="re-index"):
        store.ensure_embedder("model-b", DIM)
    with pytest.raises(EmbedderMismatchError):
        store.ensure_embedder("model-a", DIM * 2)


def test_round_trip_query_filters_and_delete(store):
    store.ensure_embedder("m", DIM)
    a = _article("a", "Første artikkel handler om ferjer. Den har to deler med tekst om ferjer.")
    b = _article(
        "b",
        "Second article is about libraries. It also has two parts about libraries.",
        date="2023-01-05",
        source="Paper",
        language="en",
    )
    chunks_a, vectors_a = _write(store, a, 1)
    chunks_b, _ = _write(store, b, 2)
    assert store.counts() == (2, 4)
    assert store.get_article("a").text == a.text and store.get_article("nope") is None
    stored = store.stored_articles()
    assert set(stored) == {"a", "b"} and stored["a"].meta.content_hash == a.content_hash

    matches = store.nearest(vectors_a[0], 30, Filters())  # more than the store holds
    assert len(matches) == 4 and matches[0].chunk_id == chunks_a[0].id
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)
    chunk, meta = store.get_chunks([matches[0].chunk_id])[matches[0].chunk_id]
    assert chunk.text == a.text[chunk.start : chunk.end]
    assert meta.title == "Tittel a" and meta.date == "2024-11-27"
    owner = {c.id: "a" for c in chunks_a} | {c.id: "b" for c in chunks_b}

    def only(f):
        return {owner[m.chunk_id] for m in store.nearest(vectors_a[0], 4, f)}

    assert only(Filters(since="2024-01-01")) == {"a"}
    assert only(Filters(until="2023-12-31")) == {"b"}
    assert only(Filters(sources=("Paper",))) == {"b"}
    assert only(Filters(languages=("nb",))) == {"a"}
    assert only(Filters(since="2020-01-01", until="2030-01-01", languages=("en", "nb"))) == {"a", "b"}
    assert only(Filters(articles=("b",))) == {"b"} and only(Filters(articles=("a", "b"))) == {"a", "b"}
    assert only(Filters(articles=("b",), languages=("nb",))) == set()

    assert set(store.chunk_ids_of("a")) == {c.id for c in chunks_a}
    assert {c.id for c, _ in store.iter_chunks()} == {c.id for c in chunks_a + chunks_b}
    assert store.chunk_owners()[chunks_b[0].id] == ("b", b.content_hash)
    assert store.article_hashes(["a", "b", "zz"]) == {"a": a.content_hash, "b": b.content_hash}
    got = store.get_chunks([chunks_b[1].id])
    assert got[chunks_b[1].id][0].text == chunks_b[1].text

    store.delete_article("a")
    assert store.counts() == (1, 2)
    assert store.chunk_ids_of("a") == [] and store.get_article("a") is None


def test_generation_is_shared_through_the_store(store):
    store.ensure_embedder("m", DIM)
    assert store.generation() == "0"
    store.set_generation("g2")
    assert store.generation() == "g2"
    assert store.recorded_embedder() == "m"  # setting the generation keeps the embedder record


def test_a_reader_sees_the_generation_a_writer_publishes_after_it_opened(open_store):
    """A server opened before an ingest must learn of it, or its BM25 side never reloads."""
    reader, writer = open_store(), open_store()
    writer.ensure_embedder("m", DIM)
    assert reader.generation() == "0"
    writer.set_generation("g2")
    assert reader.generation() == "g2"


def test_a_reader_follows_a_reset_run_by_another_client(open_store):
    """`kilde ingest --reset` while a server runs: the server reads the new index, not a deleted collection."""
    reader, writer = open_store(), open_store()
    writer.ensure_embedder("m", DIM)
    _write(writer, _article("a", "Gammel tekst om havna. " * 5), seed=1)
    assert reader.counts() == (1, 2)
    writer.reset()
    writer.ensure_embedder("m", DIM)
    chunks, vectors = _write(writer, _article("b", "Ny tekst om ferja. " * 5), seed=2)
    writer.set_generation("g3")
    assert reader.generation() == "g3"
    assert reader.counts() == (1, 2) and reader.get_article("a") is None
    assert reader.nearest(vectors[0], 1, Filters())[0].chunk_id == chunks[0].id


def test_an_embedded_reader_searches_what_another_process_wrote(tmp_path):
    """Embedded Chroma keeps its vector index in memory: a server must reload it when an ingest publishes."""
    writer = ChromaStore.open(tmp_path, None, "contract")
    writer.ensure_embedder("m", DIM)
    _write(writer, _article("a", "Gammel tekst om havna. " * 5), seed=1)
    writer.set_generation("g1")
    reader = ChromaStore.open(tmp_path, None, "contract", create=False)
    assert reader.generation() == "g1"
    vector = _vectors(1, seed=9)[0]
    assert [m.chunk_id for m in reader.nearest(vector, 2, Filters())] != []

    another_process = f"""
import numpy as np
from pathlib import Path
from tests.test_store_contract import _article, _chunks
from assistant.indexes.store import ChromaStore, VectorStore
store = ChromaStore.open(Path({str(tmp_path)!r}), None, "contract")
article = _article("b", "Ny tekst om ferja. " * 5)
chunks = _chunks(article)
store.upsert_chunks(article, chunks, np.asarray([{vector.tolist()!r}] * len(chunks), dtype=np.float32))
store.upsert_article(article, "sig", len(chunks))
store.set_generation("g2")
"""
    subprocess.run([sys.executable, "-c", another_process], check=True, cwd=ROOT, timeout=120)
    assert reader.generation() == "g2"
    assert reader.nearest(vector, 1, Filters())[0].chunk_id.startswith("b")


def test_a_reader_whose_index_is_removed_says_so_and_reads_the_one_built_again(tmp_path):
    """A server whose index folder is emptied while it runs is told so, naming the file gone and `kilde ingest`,
    not answered from what its client still holds in memory; the index built again in its place is read
    without a restart. Asking creates nothing where the index was."""
    writer = ChromaStore.open(tmp_path, None, "contract")
    writer.ensure_embedder("m", DIM)
    _write(writer, _article("a", "Gammel tekst om havna. " * 5), seed=1)
    writer.set_generation("g1")
    reader = ChromaStore.open(tmp_path, None, "contract", create=False)
    assert reader.generation() == "g1" and reader.counts() == (1, 2)
    vector = _vectors(1, seed=9)[0]

    shutil.rmtree(tmp_path / "chroma")
    gone = re.escape(str(tmp_path / "chroma" / "chroma.sqlite3")) + ".*kilde ingest"
    for read in (
        reader.ensure_present,
        reader.counts,
        reader.generation,
        reader.stored_articles,
        lambda: reader.get_article("a"),
        lambda: reader.nearest(vector, 2, Filters()),
    ):
        with pytest.raises(IndexGoneError, match=gone):
            read()
    assert not (tmp_path / "chroma").exists()

    build_again = f"""
from pathlib import Path
from tests.test_store_contract import _article, _write
from assistant.indexes.store import ChromaStore, VectorStore
store = ChromaStore.open(Path({str(tmp_path)!r}), None, "contract")
store.ensure_embedder("m", 8)
_write(store, _article("b", "Ny tekst om ferja. " * 5), seed=2)
store.set_generation("g2")
"""
    subprocess.run([sys.executable, "-c", build_again], check=True, cwd=ROOT, timeout=120)
    assert reader.generation() == "g2" and reader.counts() == (1, 2)
    assert reader.get_article("a") is None and reader.get_article("b") is not None
    assert reader.nearest(vector, 1, Filters())[0].chunk_id.startswith("b")


def test_readers_of_two_indexes_in_one_process_each_follow_their_writer(tmp_path):
    """A reload clears Chroma's shared client cache: the other reader's next reload must not depend on it."""
    readers, writers = [], []
    for name in ("one", "two"):
        writer = ChromaStore.open(tmp_path / name, None, "contract")
        writer.ensure_embedder("m", DIM)
        _write(writer, _article(name, "Tekst om havna. " * 5), seed=1)
        writer.set_generation("g0")
        writers.append(writer)
        readers.append(ChromaStore.open(tmp_path / name, None, "contract", create=False))
    assert [reader.generation() for reader in readers] == ["g0", "g0"]
    for writer, reader in zip(writers, readers, strict=True):
        writer.set_generation("g1")
        assert reader.generation() == "g1"
        assert reader.counts() == (1, 2)


def test_queries_while_another_process_publishes_and_resets_are_answered_or_told_it_is_busy(tmp_path):
    """A server's threads keep answering through the reloads that follow another process's ingests; while a reset
    rewrites the index they are told so (Kilde's error, a 503), never Chroma's internal error. The other process
    holds the writer lock, as each of Kilde's writers does (`ingest.pipeline`): without it, what the readers cannot
    read is a damaged index."""
    writer = ChromaStore.open(tmp_path, None, "contract")
    writer.ensure_embedder("m", DIM)
    _write(writer, _article("a", "Gammel tekst om havna. " * 5), seed=1)
    writer.set_generation("g0")
    reader = ChromaStore.open(tmp_path, None, "contract", create=False)
    errors: list[BaseException] = []
    busy: list[tuple[str, str]] = []  # (phase, error) of the queries told the index is being rewritten
    done = threading.Event()
    phase = ["start"]

    def ask():
        rng = np.random.default_rng(threading.get_ident() % 1000)
        while not done.is_set():
            try:
                reader.generation()
                reader.nearest(rng.normal(size=DIM).astype(np.float32), 2, Filters())
                reader.get_article("a")
            except (StoreBusyError, IndexMissingError) as exc:
                busy.append((phase[0], type(exc).__name__))
            except BaseException as exc:
                errors.append(exc)
                return

    askers = [threading.Thread(target=ask) for _ in range(3)]
    for thread in askers:
        thread.start()
    publish = f"""
import fcntl
import sys
from pathlib import Path
from tests.test_store_contract import _article, _write
from assistant.indexes.store import ChromaStore, VectorStore
lock = open(Path({str(tmp_path)!r}) / "ingest.lock", "a+")
fcntl.flock(lock, fcntl.LOCK_EX)
store = ChromaStore.open(Path({str(tmp_path)!r}), None, "contract")
if sys.argv[1] == "reset":
    store.reset()
    store.ensure_embedder("m", 8)
_write(store, _article("n" + sys.argv[2], "Ny tekst om ferja. " * 5), seed=int(sys.argv[2]))
store.set_generation("g" + sys.argv[2])
"""
    try:
        for n, how in enumerate(["add", "add", "reset", "add"], start=1):
            phase[0] = f"{how}{n}"
            subprocess.run([sys.executable, "-c", publish, how, str(n)], check=True, cwd=ROOT, timeout=120)
    finally:
        done.set()
        for thread in askers:
            thread.join()
    assert not errors, errors
    # Only while the reset's ingest rewrote the index was a query told so; before and after, all answered.
    assert {when for when, _ in busy} <= {"reset3"}, busy
    assert reader.generation() == "g4" and reader.counts() == (2, 4)


def _every_call(store, unopened, article, chunks, vectors) -> dict:
    """Each call of the contract on a server store, by name: `unopened` has not read its collections yet."""
    calls = {
        "exists": store.exists,
        # (a store that opened its collections checks the embedder against what it read then)
        "ensure_embedder": lambda: unopened.ensure_embedder("m", DIM),
        "recorded_embedder": store.recorded_embedder,
        "upsert_chunks": lambda: store.upsert_chunks(article, chunks, vectors),
        "chunk_ids_of": lambda: store.chunk_ids_of(article.id),
        "delete_chunks": lambda: store.delete_chunks([chunks[0].id]),
        "upsert_article": lambda: store.upsert_article(article, "sig", len(chunks)),
        "delete_article": lambda: store.delete_article(article.id),
        "get_article": lambda: store.get_article(article.id),
        "stored_articles": store.stored_articles,
        "nearest": lambda: store.nearest(vectors[0], 1, Filters()),
        "iter_chunks": lambda: list(store.iter_chunks()),
        "chunk_owners": store.chunk_owners,
        "counts": store.counts,
        "reset": store.reset,
        "generation": store.generation,
        "set_generation": lambda: store.set_generation("g2"),
        "article_hashes": lambda: store.article_hashes([article.id]),
        "get_chunks": lambda: store.get_chunks([chunks[0].id]),
    }
    contract = {n for n, v in vars(VectorStore).items() if callable(v) and not n.startswith("_")}
    assert set(calls) == contract - {
        "ensure_present"
    }  # a stat of an embedded index's files; a server has none
    return calls


@pytest.mark.integration
def test_a_server_that_stops_is_named_unreachable_by_every_call_and_read_again_once_it_is_back(tmp_path):
    """Every call of the contract that asks a stopped `chroma run` raises `StoreUnreachableError` naming the
    server's URL without the password in it, not the HTTP client's error; the same store object reads again
    once the server is back."""
    port = free_port()
    article = _article("ferje", "Fergekaia i Vestrevik ble åpnet i går etter to års bygging.")
    with chroma_server(tmp_path / "db", port=port) as url:
        secret_url = url.replace("http://", "http://kilde:s3cret@")
        store = ChromaStore.open(tmp_path, secret_url, "outage")
        unopened = ChromaStore.open(tmp_path, secret_url, "outage")  # its collections not read yet
        store.ensure_embedder("m", DIM)
        chunks, vectors = _write(store, article, seed=1)
        store.set_generation("g1")
    for name, call in _every_call(store, unopened, article, chunks, vectors).items():
        with pytest.raises(StoreUnreachableError) as caught:
            call()
        assert f"Chroma server at {url} cannot be reached" in str(caught.value), name
        assert "s3cret" not in str(caught.value), name
    with chroma_server(tmp_path / "db", port=port):  # the same server, started again
        assert store.counts() == (1, 2) and store.get_article(article.id).text == article.text
        assert store.generation() == "g1"


@pytest.mark.integration
def test_a_server_that_hangs_is_named_unreachable_by_every_call_after_the_timeout_and_read_again_once_it_answers(
    tmp_path,
):
    """A `chroma run` that accepts connections and never answers (stopped with SIGSTOP) hung every call, and
    opening a store, for ever: Chroma's HTTP client has no timeout. Each now raises `StoreUnreachableError`
    naming the server and the wait once the timeout passes; the same store reads again once the server
    answers."""
    article = _article("ferje", "Fergekaia i Vestrevik ble åpnet i går etter to års bygging.")
    with chroma_process(tmp_path / "db") as (url, process):
        secret_url = url.replace("http://", "http://kilde:s3cret@")
        store = ChromaStore.open(tmp_path, secret_url, "hang", timeout_s=0.3)
        unopened = ChromaStore.open(tmp_path, secret_url, "hang", timeout_s=0.3)
        store.ensure_embedder("m", DIM)
        chunks, vectors = _write(store, article, seed=1)
        store.set_generation("g1")
        with hung(process):
            opening = lambda: ChromaStore.open(tmp_path, secret_url, "hang", timeout_s=0.3)  # noqa: E731
            calls = {"open": opening, **_every_call(store, unopened, article, chunks, vectors)}
            for name, call in calls.items():
                with pytest.raises(StoreUnreachableError) as caught:
                    call()
                said = str(caught.value)
                assert f"Chroma server at {url} cannot be reached (no answer within 0.3 s" in said, name
                assert "KILDE_CHROMA_TIMEOUT" in said and "s3cret" not in said, name
        assert store.counts() == (1, 2) and store.get_article(article.id).text == article.text


@pytest.mark.integration
@pytest.mark.parametrize(
    ("failure", "says"),
    [
        ((502, "text/html", b"<html><body>502 Bad Gateway</body></html>"), "HTTP 502 Bad Gateway)"),
        (
            (500, "application/json", b'{"error": "InternalError", "message": "disk I/O error"}'),
            "HTTP 500 Internal Server Error: disk I/O error)",
        ),
        ((200, "text/html", b"<html>Logg inn</html>"), "an answer that is no JSON"),
        # A proxy's own 4xx, a page or JSON that is not Chroma's error: a bare `Exception` holding the page.
        ((404, "text/html", b"<html><body>404 Not Found</body></html>"), "HTTP 404 Not Found)"),
        (
            (401, "text/html", b"<html><body>401 Authorization Required</body></html>"),
            "HTTP 401 Unauthorized)",
        ),
        ((403, "text/html; charset=utf-8", b"<html><body>Forbidden</body></html>"), "HTTP 403 Forbidden)"),
        ((401, "application/json", b'{"message": "Unauthorized"}'), "HTTP 401 Unauthorized: Unauthorized)"),
    ],
)
def test_a_server_that_answers_an_error_is_named_by_every_call_not_with_chromas_exception(
    tmp_path, chroma_url, failure, says
):
    """A proxy's 502 page, Chroma's own 500, a 200 that is no JSON, or a proxy's 4xx (a 401 or 403 page asking
    for credentials, a 404 page), in answer to opening a store or to any call: Chroma's client raised its
    `InternalError`, a bare `Exception` holding the page, or orjson's error, each a 500 and a traceback on every
    face. Each is now `StoreFailedError` (503 `not_ready`) naming the server and the status, without a proxy's
    page, and a 401 or 403 `StoreRefusedError` saying that the server refused Kilde's request; once the server
    answers again, the same store reads as before (Chroma's own 404, JSON, still tells a reset index)."""
    article = _article("ferje", "Fergekaia i Vestrevik ble åpnet i går etter to års bygging.")
    name = f"failing-{tmp_path.name[-20:].replace('_', '-')}"
    with FailingProxy(chroma_url) as proxy:
        store = ChromaStore.open(tmp_path, proxy.url, name)
        unopened = ChromaStore.open(tmp_path, proxy.url, name)
        store.ensure_embedder("m", DIM)
        chunks, vectors = _write(store, article, seed=1)
        proxy.failure = failure
        opening = lambda: ChromaStore.open(tmp_path, proxy.url, name)  # noqa: E731
        for call_name, call in {
            "open": opening,
            **_every_call(store, unopened, article, chunks, vectors),
        }.items():
            refused = failure[0] in (401, 403)
            with pytest.raises(StoreRefusedError if refused else StoreFailedError) as caught:
                call()
            said = str(caught.value)
            verb = "refused Kilde's request" if refused else "answered with an error"
            assert f"Chroma server at {proxy.url} {verb} ({says}" in said, (call_name, said)
            assert "<html" not in said, call_name
        proxy.failure = None
        assert store.counts() == (1, 2) and store.get_article(article.id).text == article.text
        store.reset()


@pytest.mark.integration
def test_a_server_that_trickles_its_answers_is_named_unreachable_by_every_call_after_the_timeout(
    tmp_path, chroma_url
):
    """A server (or a proxy) that sends its answer a byte at a time, each sooner than the timeout, kept every
    call, and opening a store, waiting as long as it trickled: the timeout bounded each wait for the socket, not
    the answer. Each now raises the hung server's `StoreUnreachableError` once the timeout has passed since the
    request (the whole request, not each wait), and the same store reads again once answers come whole."""
    article = _article("ferje", "Fergekaia i Vestrevik ble åpnet i går etter to års bygging.")
    name = f"trickle-{tmp_path.name[-20:].replace('_', '-')}"
    with FailingProxy(chroma_url) as proxy:
        store = ChromaStore.open(tmp_path, proxy.url, name, timeout_s=0.5)
        unopened = ChromaStore.open(tmp_path, proxy.url, name, timeout_s=0.5)
        store.ensure_embedder("m", DIM)
        chunks, vectors = _write(store, article, seed=1)
        proxy.trickle = 0.05  # a byte every 0.05 s: some 10 bytes of an answer within the 0.5 s
        opening = lambda: ChromaStore.open(tmp_path, proxy.url, name, timeout_s=0.5)  # noqa: E731
        for call_name, call in {
            "open": opening,
            **_every_call(store, unopened, article, chunks, vectors),
        }.items():
            with pytest.raises(StoreUnreachableError) as caught:
                call()
            said = str(caught.value)
            assert f"Chroma server at {proxy.url} cannot be reached (no answer within 0.5 s" in said, (
                call_name
            )
            assert "KILDE_CHROMA_TIMEOUT" in said, call_name
        proxy.trickle = None
        # The proxy passed each request on (the deletes and the reset were done): written again, it reads.
        store.ensure_embedder("m", DIM)
        _write(store, article, seed=1)
        assert store.counts() == (1, 2) and store.get_article(article.id).text == article.text
        store.reset()


@pytest.mark.integration
def test_opening_a_store_bounds_the_tenant_check_too(tmp_path, chroma_url):
    """Chroma's client checks the tenant and database through an admin client with an HTTP session of its own,
    which Kilde had not bounded: a server that answered who Kilde is and then trickled the tenant check held
    opening a store as long as it trickled. That request is now bounded as the first one is."""
    with FailingProxy(chroma_url) as proxy:
        proxy.only, proxy.trickle = "/tenants/", 0.05
        with pytest.raises(StoreUnreachableError) as caught:
            ChromaStore.open(tmp_path, proxy.url, "tenant-check", timeout_s=0.5)
        assert f"Chroma server at {proxy.url} cannot be reached (no answer within 0.5 s" in str(caught.value)
        assert any("/auth/identity" in asked for asked in proxy.requested)


TOKEN = "kilde-chroma-TOKEN-0123456789abcdef"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("header", "sent"), [("Authorization", f"Bearer {TOKEN}"), ("X-Chroma-Token", TOKEN)]
)
def test_a_server_behind_a_token_is_read_with_it_and_refused_clearly_without_it(
    tmp_path, chroma_url, header, sent
):
    """A Chroma server behind a proxy that asks for a token (`Authorization: Bearer`, or Chroma's own
    X-Chroma-Token header) could not be reached: Kilde sent no credentials. With the token every call of the
    contract reads and writes through it; without it, or with a wrong one, opening the store is
    `StoreRefusedError` naming the likely cause and the setting to check, and the token is in no message."""
    article = _article("ferje", "Fergekaia i Vestrevik ble åpnet i går etter to års bygging.")
    name = f"token-{tmp_path.name[-20:].replace('_', '-')}"
    with FailingProxy(chroma_url, token=(header, sent)) as proxy:
        store = ChromaStore.open(tmp_path, proxy.url, name, token=TOKEN, token_header=header)
        unopened = ChromaStore.open(tmp_path, proxy.url, name, token=TOKEN, token_header=header)
        store.ensure_embedder("m", DIM)
        chunks, vectors = _write(store, article, seed=1)
        calls = _every_call(store, unopened, article, chunks, vectors)
        calls["reset"] = calls.pop("reset")  # last
        for call_name, call in calls.items():
            call()  # each through the proxy, with the token
            assert proxy.refused == 0, call_name
        store = ChromaStore.open(tmp_path, proxy.url, name, token=TOKEN, token_header=header)
        store.ensure_embedder("m", DIM)
        _write(store, article, seed=1)
        assert store.counts() == (1, 2) and store.get_article(article.id).text == article.text

        with pytest.raises(StoreRefusedError) as missing:
            ChromaStore.open(tmp_path, proxy.url, name)
        said = str(missing.value)
        assert f"Chroma server at {proxy.url} refused Kilde's request (HTTP 401 Unauthorized)" in said
        assert "Kilde sent none" in said and "KILDE_CHROMA_TOKEN" in said and "<html" not in said

        with pytest.raises(StoreRefusedError) as wrong:
            ChromaStore.open(tmp_path, proxy.url, name, token=TOKEN[::-1], token_header=header)
        said = str(wrong.value)
        assert f"the token Kilde sent in {header} is wrong" in said and "KILDE_CHROMA_TOKEN" in said
        assert TOKEN not in said and TOKEN[::-1] not in said and TOKEN[-8:] not in said
        store.reset()


def test_reset_removes_everything(store):
    store.ensure_embedder("m", DIM)
    _write(store, _article("a", "En artikkel med nok tekst til å dele i to deler."), 3)
    store.reset()
    assert not store.exists()


@pytest.mark.parametrize(
    "url",
    ["ftp://kilde:s3cret@127.0.0.1:8000", "http://kilde:s3cret@127.0.0.1:99999", "http://kilde:s3cret@:8000"],
)
def test_a_malformed_chroma_url_is_named_without_its_password(tmp_path, url):
    """The error printed the URL as given, password and all, to a terminal or a server's log."""
    from assistant.core.errors import ConfigError

    with pytest.raises(ConfigError, match="KILDE_CHROMA_URL must look like") as raised:
        ChromaStore.open(tmp_path, url, "kilde")
    assert "s3cret" not in str(raised.value) and "kilde:" not in str(raised.value)
