"""The vector store behind a small contract, implemented on Chroma (embedded or `chroma run` server).

Two collections: `<name>-chunks` holds chunk text, vectors and provenance; `<name>-articles` holds each
article's cleaned text and metadata. An article record is written after its chunks, so a record whose
`content_hash` matches is the commit point of that article (see ingest/pipeline.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import inspect
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx
import numpy as np

from assistant.core.config import INGEST_LOCK
from assistant.core.errors import (
    BadInputError,
    ConfigError,
    EmbedderMismatchError,
    IndexDamagedError,
    IndexGoneError,
    IndexMissingError,
    StoreBusyError,
    StoreUnreachableError,
    shortened,
)
from assistant.core.types import Article, ArticleMeta, Chunk, Filters
from assistant.indexes.chroma_server import http_client, server_error, token_headers
from assistant.indexes.storage import as_storage_error

_PAGE = 2000
SERVER_TIMEOUT_S = 30.0  # Settings.chroma_timeout_s
TOKEN_HEADER = "Authorization"  # Settings.chroma_token_header
RETIRED_CLIENT_GRACE_S = 60.0  # a query on a replaced client finishes long before it is stopped
DB_FILE = "chroma.sqlite3"  # embedded Chroma's records, in the index's chroma/ folder


@dataclass(frozen=True)
class StoredArticle:
    meta: ArticleMeta
    signature: str  # chunker + embedder settings the chunks were made with
    chunk_count: int
    origin: str | None
    source_path: str | None = (
        None  # the origin's file, resolved; absent in records written before it was kept
    )


@dataclass(frozen=True)
class DenseMatch:
    chunk_id: str
    similarity: float


class VectorStore(Protocol):
    location: str

    def exists(self) -> bool: ...
    def ensure_present(self) -> None: ...
    def ensure_embedder(self, name: str, dim: int) -> None: ...
    def recorded_embedder(self) -> str | None: ...
    def upsert_chunks(self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...
    def chunk_ids_of(self, article_id: str) -> list[str]: ...
    def delete_chunks(self, ids: Sequence[str]) -> None: ...
    def upsert_article(
        self, article: Article, signature: str, chunk_count: int, source_path: str | None = None
    ) -> None: ...
    def delete_article(self, article_id: str) -> None: ...
    def get_article(self, article_id: str) -> Article | None: ...
    def stored_articles(self) -> dict[str, StoredArticle]: ...
    def nearest(self, vector: np.ndarray, k: int, filters: Filters) -> list[DenseMatch]: ...
    def iter_chunks(self) -> Iterator[tuple[Chunk, ArticleMeta]]: ...
    def chunk_owners(self) -> dict[str, tuple[str, str]]: ...
    def counts(self) -> tuple[int, int]: ...
    def reset(self) -> None: ...
    def generation(self) -> str: ...
    def set_generation(self, generation: str) -> None: ...
    def article_hashes(self, ids: Sequence[str]) -> dict[str, str]: ...
    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[Chunk, ArticleMeta]]: ...


def date_int(date: str | None) -> int:
    """ISO date -> YYYYMMDD, so Chroma can range-filter it (it compares numbers only)."""
    if not date:
        return 0
    return int(date[:10].replace("-", ""))


def where_clause(filters: Filters) -> dict | None:
    clauses: list[dict] = []
    if filters.since:
        clauses.append({"date_int": {"$gte": date_int(filters.since)}})
    if filters.until:
        clauses.append({"date_int": {"$lte": date_int(filters.until)}})
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    if filters.languages:
        clauses.append({"language": {"$in": list(filters.languages)}})
    if filters.articles:
        clauses.append({"article_id": {"$in": list(filters.articles)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _meta_of(m: dict, article_id: str) -> ArticleMeta:
    return ArticleMeta(
        id=article_id,
        title=m.get("title", ""),
        date=m.get("date") or None,
        source=m.get("source") or None,
        url=m.get("url") or None,
        language=m.get("language", ""),
        content_hash=m.get("article_hash") or m.get("content_hash", ""),
    )


def _chunk_of(chunk_id: str, text: str, m: dict) -> Chunk:
    return Chunk(
        id=chunk_id,
        article_id=m["article_id"],
        position=int(m["position"]),
        text=text,
        start=int(m["start"]),
        end=int(m["end"]),
        token_count=int(m["token_count"]),
    )


def _load_vector_index(chunks) -> None:
    """A fresh embedded client reads its vector index from disk on its first search (the first query after a
    reload: bench/RESULTS-follow-ingest.md): search once before questions reach it. An empty or half-written index is left to them."""
    with contextlib.suppress(Exception):
        first = chunks.get(limit=1, include=["embeddings"])
        if len(first["ids"]):
            chunks.query(query_embeddings=[first["embeddings"][0]], n_results=1, include=["distances"])


def _after_a_reset(read: Callable) -> Callable:
    """Another client may have reset the index (`kilde ingest --reset`) since this one opened its collections:
    a read that finds its collection gone opens the new one and is tried once more. An embedded reader may find
    the new collection's files half-written until that ingest finishes: a clear "busy", not Chroma's internal
    error."""

    @functools.wraps(read)
    def reading(self, *args, **kwargs):
        from chromadb.errors import InternalError, NotFoundError

        self.ensure_present()
        opened = self._articles
        try:
            try:
                return read(self, *args, **kwargs)
            except NotFoundError:
                self._reopen(opened)
                return read(self, *args, **kwargs)
        except InternalError as exc:
            if self._timeout_s is not None or as_storage_error(exc, self.location) is not None:
                raise  # a server's own error, or a full or read-only disk: each answered as such
            if self._reconnect is not None:  # a reader: an ingest beside it may be rewriting the files
                self.ensure_present()  # its files were removed while it read: gone, not busy
                if not ingest_at_work(Path(self.location)):
                    # The ingest may have finished between the read and the look at its lock: read once more
                    try:
                        self._reopen()
                        return read(self, *args, **kwargs)
                    except InternalError as again:
                        exc = again
                if ingest_at_work(Path(self.location)):
                    raise rewritten_meanwhile(self.location, exc) from None
            # No ingest at work (a writer is the one): the files are damaged, not half-written
            raise IndexDamagedError(self.location, shortened(str(exc))) from None

    return reading


def _internal_error_in(exc: BaseException | None) -> BaseException | None:
    """Chroma's InternalError, `exc` or one it was raised while handling; None if there is none."""
    from chromadb.errors import InternalError

    while exc is not None and not isinstance(exc, InternalError):
        exc = exc.__context__
    return exc


def rewritten_meanwhile(location: object, exc: BaseException) -> StoreBusyError:
    """A read that met the index's files half-written by the ingest at work on them."""
    return StoreBusyError(
        f"the index at {location} cannot be read while an ingest rewrites it ({exc}); ask again when the ingest "
        "has finished"
    )


def ingest_at_work(data_dir: Path) -> bool:
    """Whether an ingest holds the index's writer lock (`INGEST_LOCK`, taken by `ingest.pipeline`); the file stays
    after an ingest ends, the lock does not."""
    try:
        with open(data_dir / INGEST_LOCK, "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def _reaching_the_server(call: Callable) -> Callable:
    """A Chroma server that does not answer (stopped, restarting, hung, trickling its answer past the timeout, cut
    off) is `StoreUnreachableError` naming its URL, and one that answers with a server error, a proxy's 4xx or no
    JSON `StoreFailedError` (`StoreRefusedError` for a 401 or 403: a token missing or wrong), not the HTTP
    client's error or Chroma's, which every face would answer as a bug (a 500 and a traceback). The next call asks
    the server again: when it answers, the store reads as before."""

    if inspect.isgeneratorfunction(call):

        @functools.wraps(call)
        def iterating(self, *args, **kwargs):
            try:
                yield from call(self, *args, **kwargs)
            except (httpx.HTTPError, json.JSONDecodeError) as exc:
                failure = self._server_error(exc)
                if failure is None:
                    raise
                raise failure from None

        return iterating

    @functools.wraps(call)
    def calling(self, *args, **kwargs):
        try:
            return call(self, *args, **kwargs)
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            failure = self._server_error(exc)
            if failure is None:
                raise
            raise failure from None

    return calling


def _identity(path: Path) -> tuple[int, int] | None:
    """The file at `path` (device, inode), None if there is none: a file built again in its place has another."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class ChromaStore:
    """Embedded (`PersistentClient`) or server (`HttpClient`) Chroma; one class, one contract."""

    def __init__(
        self,
        client,
        name: str,
        location: str,
        embedding_function=None,
        search_breadth: int = 0,
        reconnect: Callable[[], Any] | None = None,
        db_file: Path | None = None,
        timeout_s: float | None = None,
        token_header: str | None = None,
    ):
        """`reconnect`: opens a fresh client, for an embedded reader to see what another process wrote
        (`generation`). `db_file`: the embedded index's records, which such a reader watches (`ensure_present`).
        `timeout_s`: a server's client's timeout, for its messages; None for embedded Chroma. `token_header`: the
        header a server's client sends its token in, None if it sends none, for a refusal's message."""
        self._client = client
        self._timeout_s = timeout_s
        self._token_header = token_header
        self.name = name
        self.location = location
        self._ef = embedding_function
        self.search_breadth = search_breadth  # `nearest` asks for at least this many neighbours
        self._chunks = None
        self._articles = None
        self._reconnect = reconnect
        # The client's Chroma system, taken while Chroma's cache still names it (another reader may clear it).
        self._system = client._system if reconnect else None
        self._generation_seen: str | None = None
        self._retired: list[tuple[float, Any]] = []  # (when, Chroma system) of replaced clients
        self._reopening = threading.Lock()
        self._db_file = db_file
        self._db_identity = _identity(db_file) if db_file is not None else None

    @classmethod
    def open(
        cls,
        data_dir,
        chroma_url: str | None,
        name: str,
        embedding_function=None,
        create: bool = True,
        search_breadth: int = 0,
        timeout_s: float = SERVER_TIMEOUT_S,
        token: str | None = None,
        token_header: str = TOKEN_HEADER,
    ) -> ChromaStore:
        """`create=False` (reading commands) refuses a data folder with no index and creates nothing there.
        `search_breadth`: see `nearest`. `timeout_s`: the longest a Chroma server may take to answer a request
        whole. `token`: sent to the server in `token_header` (`token_headers`); never in a message."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if chroma_url:
            url = urlparse(chroma_url)
            try:
                port = url.port or (443 if url.scheme == "https" else 80)
            except ValueError:  # "Port out of range 0-65535", "Port could not be cast to integer value"
                port = None
            if url.scheme not in ("http", "https") or not url.hostname or port is None:
                # A password is not printed, even in a wrong URL.
                shown = re.sub(r"//[^/@]*@", "//", chroma_url)
                raise ConfigError(f"KILDE_CHROMA_URL must look like http://127.0.0.1:8000, got {shown!r}")
            # Where it is named in messages: the server Kilde talks to, without any user or password in the URL.
            where = f"{url.scheme}://{url.netloc.rpartition('@')[2]}"
            headers = token_headers(token, token_header)
            client = http_client(url, port, where, chroma_settings, timeout_s, headers)
            sent = token_header if headers else None
            return cls(
                client,
                name,
                where,
                embedding_function,
                search_breadth,
                timeout_s=timeout_s,
                token_header=sent,
            )
        from assistant.indexes.storage import private_copy, writable

        chroma_dir = data_dir / "chroma"
        if not create and not chroma_dir.is_dir():
            raise IndexMissingError(str(data_dir))
        if chroma_dir.exists() and not writable(chroma_dir):
            chroma_dir = private_copy(
                chroma_dir
            )  # read commands on a read-only index; writers fail on the lock
        elif data_dir.exists() and not data_dir.is_dir():
            raise BadInputError(
                str(data_dir), "--data-dir is a file, not a folder; name a folder (a new one is created)"
            )
        elif not data_dir.exists():
            try:
                data_dir.mkdir(parents=True)
            except (NotADirectoryError, FileExistsError):  # a file where a parent folder should be
                raise BadInputError(
                    str(data_dir),
                    "--data-dir lies under a file, not a folder; name a folder (a new one is created)",
                ) from None

        def connect():
            try:
                return chromadb.PersistentClient(path=str(chroma_dir), settings=chroma_settings)
            except Exception as raised:
                # Its records cannot be opened ("database disk image is malformed"): Chroma's InternalError, which
                # its client's clean-up may bury under errors of its own (the bindings it never made)
                exc = _internal_error_in(raised)
                if exc is None or as_storage_error(exc, str(data_dir)) is not None:
                    raise  # a full or read-only disk is the command's to name (assistant/cli.py)
                # Chroma keeps the system it failed to start for this folder, and the next client made here
                # would use it without starting it (a ValueError about the tenant): forget it
                from chromadb.api.shared_system_client import SharedSystemClient

                SharedSystemClient._identifier_to_system.pop(str(chroma_dir), None)
                SharedSystemClient._identifier_to_refcount.pop(str(chroma_dir), None)
                if ingest_at_work(data_dir):
                    raise rewritten_meanwhile(data_dir, exc) from None
                raise IndexDamagedError(str(data_dir), shortened(str(exc))) from None

        # A store opened only to read (a server, `kilde ask`) follows the writes of an ingest run beside it,
        # and notices when its files are removed or replaced.
        if create:
            return cls(connect(), name, str(data_dir), embedding_function, search_breadth)
        return cls(
            connect(), name, str(data_dir), embedding_function, search_breadth, connect, chroma_dir / DB_FILE
        )

    def _server_error(self, exc: Exception) -> StoreUnreachableError | None:
        """`_reaching_the_server`'s error for `exc`; None where no server failed (embedded Chroma has none)."""
        if self._timeout_s is None:
            return None
        return server_error(self.location, exc, self._timeout_s, self._token_header)

    # -- collections ---------------------------------------------------------------------------

    def _names(self) -> set[str]:
        return {c if isinstance(c, str) else c.name for c in self._client.list_collections()}

    @_reaching_the_server
    def exists(self) -> bool:
        return f"{self.name}-chunks" in self._names()

    def ensure_present(self) -> None:
        """For an embedded reader (a server, `kilde ask`): raise `IndexGoneError` when the index it opened was
        removed from disk while it ran (its folder deleted or emptied, its Chroma files removed), and open the
        new one when `kilde ingest` has built another in its place. One `stat`, no Chroma query: cheap enough
        for every request and readiness probe. A writer, and a Chroma server's index, are not checked."""
        if self._db_file is None:
            return
        opened = self._articles
        identity = _identity(self._db_file)
        if identity is None:
            raise IndexGoneError(self.location, str(self._db_file))
        if identity != self._db_identity:
            self._reopen(opened)  # IndexMissingError while the new files hold no index yet
            self._db_identity = identity

    def _open(self, create: bool) -> None:
        if self._chunks is not None:
            return
        if not create and not self.exists():
            raise IndexMissingError(self.location)
        chunks = self._client.get_or_create_collection(
            f"{self.name}-chunks", configuration={"hnsw": {"space": "cosine"}}, embedding_function=self._ef
        )
        self._articles = self._client.get_or_create_collection(
            f"{self.name}-articles", embedding_function=None
        )
        # `_chunks` last: it says the store is open, and a thread that reads it then finds `_articles` set too
        self._chunks = chunks

    @property
    def chunks(self):
        self._open(create=False)
        return self._chunks

    @property
    def articles(self):
        self._open(create=False)
        return self._articles

    @_reaching_the_server
    @_after_a_reset
    def recorded_embedder(self) -> str | None:
        if not self.exists():
            return None
        return (self.chunks.metadata or {}).get("embedder")

    @_reaching_the_server
    def ensure_embedder(self, name: str, dim: int) -> None:
        """Record the embedder on first write; refuse to mix embedders later."""
        self._open(create=True)
        meta = dict(self._chunks.metadata or {})
        recorded = meta.get("embedder")
        if recorded is None:
            meta.update(embedder=name, dim=dim)
            self._chunks.modify(metadata=meta)
        elif recorded != name or int(meta.get("dim", dim)) != dim:
            raise EmbedderMismatchError(f"{recorded} ({meta.get('dim')} dims)", f"{name} ({dim} dims)")

    @_reaching_the_server
    def reset(self) -> None:
        for suffix in ("chunks", "articles"):
            if f"{self.name}-{suffix}" in self._names():
                self._client.delete_collection(f"{self.name}-{suffix}")
        self._chunks = self._articles = None

    # -- writes --------------------------------------------------------------------------------

    @staticmethod
    def chunk_metadata(article: Article, chunk: Chunk) -> dict:
        return {
            "article_id": article.id,
            "position": chunk.position,
            "start": chunk.start,
            "end": chunk.end,
            "token_count": chunk.token_count,
            "article_hash": article.content_hash,
            "title": article.title,
            "date": article.date or "",
            "date_int": date_int(article.date),
            "source": article.source or "",
            "url": article.url or "",
            "language": article.language,
        }

    @staticmethod
    def article_metadata(
        article: Article, signature: str, chunk_count: int, source_path: str | None = None
    ) -> dict:
        return {
            "title": article.title,
            "date": article.date or "",
            "date_int": date_int(article.date),
            "source": article.source or "",
            "url": article.url or "",
            "author": article.author or "",
            "language": article.language,
            "content_hash": article.content_hash,
            "origin": article.origin or "",
            "source_path": source_path or "",
            "signature": signature,
            "chunk_count": chunk_count,
        }

    @_reaching_the_server
    def upsert_chunks(self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if not chunks:
            return
        self.chunks.upsert(
            ids=[c.id for c in chunks],
            embeddings=np.asarray(vectors, dtype=np.float32),
            documents=[c.text for c in chunks],
            metadatas=[self.chunk_metadata(article, c) for c in chunks],
        )

    @_reaching_the_server
    @_after_a_reset
    def chunk_ids_of(self, article_id: str) -> list[str]:
        return list(self.chunks.get(where={"article_id": article_id}, include=[])["ids"])

    @_reaching_the_server
    def delete_chunks(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), _PAGE):
            self.chunks.delete(ids=list(ids[i : i + _PAGE]))

    @_reaching_the_server
    def upsert_article(
        self, article: Article, signature: str, chunk_count: int, source_path: str | None = None
    ) -> None:
        self.articles.upsert(
            ids=[article.id],
            embeddings=[[1.0]],
            documents=[article.text],
            metadatas=[self.article_metadata(article, signature, chunk_count, source_path)],
        )

    @_reaching_the_server
    def delete_article(self, article_id: str) -> None:
        # The record goes first: from then on no reader treats the remaining chunks as committed.
        self.articles.delete(ids=[article_id])
        self.delete_chunks(self.chunk_ids_of(article_id))

    # -- reads ---------------------------------------------------------------------------------

    @_reaching_the_server
    @_after_a_reset
    def get_article(self, article_id: str) -> Article | None:
        got = self.articles.get(ids=[article_id], include=["documents", "metadatas"])
        if not got["ids"]:
            return None
        m, text = got["metadatas"][0], got["documents"][0]
        return Article(
            id=article_id,
            title=m["title"],
            text=text,
            content_hash=m["content_hash"],
            language=m["language"],
            date=m["date"] or None,
            source=m["source"] or None,
            url=m["url"] or None,
            author=m.get("author") or None,
            origin=m.get("origin") or None,
        )

    @_reaching_the_server
    @_after_a_reset
    def stored_articles(self) -> dict[str, StoredArticle]:
        out: dict[str, StoredArticle] = {}
        offset = 0
        while True:
            page = self.articles.get(include=["metadatas"], limit=_PAGE, offset=offset)
            for article_id, m in zip(page["ids"], page["metadatas"], strict=False):
                out[article_id] = StoredArticle(
                    meta=_meta_of(m, article_id),
                    signature=m.get("signature", ""),
                    chunk_count=int(m.get("chunk_count", 0)),
                    origin=m.get("origin") or None,
                    source_path=m.get("source_path") or None,
                )
            if len(page["ids"]) < _PAGE:
                return out
            offset += _PAGE

    @_reaching_the_server
    @_after_a_reset
    def nearest(self, vector: np.ndarray, k: int, filters: Filters) -> list[DenseMatch]:
        """The k nearest chunks: ids and cosine similarities only (text and metadata are read by `get_chunks`,
        for just the few candidates that survive fusion). Chroma's HNSW graph explores max(ef_search, n_results)
        nodes, and the graph of the vectors not yet flushed to disk is rebuilt in another order by every process
        that opens the index; asking for `search_breadth` neighbours and keeping the first k makes the k nearly
        exact, and so the same from one process to the next."""
        res = self.chunks.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=max(k, self.search_breadth),
            where=where_clause(filters),
            include=["distances"],
        )
        return [
            DenseMatch(chunk_id, 1.0 - float(dist))
            for chunk_id, dist in zip(res["ids"][0][:k], res["distances"][0][:k], strict=False)
        ]

    @_reaching_the_server
    @_after_a_reset
    def get_chunks(self, ids: Sequence[str]) -> dict[str, tuple[Chunk, ArticleMeta]]:
        if not ids:
            return {}
        got = self.chunks.get(ids=list(ids), include=["documents", "metadatas"])
        return {
            cid: (_chunk_of(cid, text, m), _meta_of(m, m["article_id"]))
            for cid, text, m in zip(got["ids"], got["documents"], got["metadatas"], strict=False)
        }

    @_reaching_the_server
    def iter_chunks(self) -> Iterator[tuple[Chunk, ArticleMeta]]:
        offset = 0
        while True:
            page = self.chunks.get(include=["documents", "metadatas"], limit=_PAGE, offset=offset)
            for chunk_id, text, m in zip(page["ids"], page["documents"], page["metadatas"], strict=False):
                yield _chunk_of(chunk_id, text, m), _meta_of(m, m["article_id"])
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    @_reaching_the_server
    @_after_a_reset
    def article_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """The committed content hash of each article that exists."""
        if not ids:
            return {}
        got = self.articles.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        return {
            article_id: m["content_hash"] for article_id, m in zip(got["ids"], got["metadatas"], strict=False)
        }

    @_reaching_the_server
    @_after_a_reset
    def chunk_owners(self) -> dict[str, tuple[str, str]]:
        """chunk id -> (article id, article hash it was written for); metadata only."""
        owners: dict[str, tuple[str, str]] = {}
        offset = 0
        while True:
            page = self.chunks.get(include=["metadatas"], limit=_PAGE, offset=offset)
            for chunk_id, m in zip(page["ids"], page["metadatas"], strict=False):
                owners[chunk_id] = (m["article_id"], m.get("article_hash", ""))
            if len(page["ids"]) < _PAGE:
                return owners
            offset += _PAGE

    @_reaching_the_server
    @_after_a_reset
    def counts(self) -> tuple[int, int]:
        return self.articles.count(), self.chunks.count()

    @_reaching_the_server
    def generation(self) -> str:
        """What the last writer published, read afresh: a collection object keeps the metadata it was opened
        with, so a server holding one would never learn of an ingest run after it started."""
        from chromadb.errors import NotFoundError

        self.ensure_present()
        self._open(create=False)
        try:
            articles = self._client.get_collection(f"{self.name}-articles", embedding_function=None)
        except NotFoundError:
            raise IndexMissingError(self.location) from None
        generation = str((articles.metadata or {}).get("generation", "0"))
        # Another client reset the index (`kilde ingest --reset`), or an embedded one published new writes.
        moved = self._reconnect is not None and self._generation_seen not in (None, generation)
        if articles.id != self._articles.id or moved:
            self._reopen(self._articles)
        self._generation_seen = generation
        self._stop_retired()
        return generation

    def _reopen(self, opened=None) -> None:
        """Open the collections anew, unless another thread did since `opened` (the articles collection it
        found) was current. Embedded Chroma keeps the vector index it loaded in memory and never sees another
        process's writes there (reads of records do), so an embedded reader takes a fresh client; the old one is
        left to the queries still using it, and stopped later. Chroma shares one client per folder in a process:
        its cache is cleared first."""
        from chromadb.api.shared_system_client import SharedSystemClient
        from chromadb.errors import NotFoundError

        with self._reopening:
            if opened is not None and self._articles is not opened:
                return
            client, system = self._client, self._system
            if self._reconnect is not None:
                SharedSystemClient.clear_system_cache()
                client = self._reconnect()
                system = client._system
            try:
                chunks = client.get_collection(f"{self.name}-chunks", embedding_function=self._ef)
                articles = client.get_collection(f"{self.name}-articles", embedding_function=None)
            except NotFoundError:
                # The client in use stays in use; a fresh one that found no index is stopped, not kept (a reader
                # asked again and again while an index is gone would hold one per question).
                if system is not self._system:
                    with contextlib.suppress(Exception):
                        system.stop()
                    SharedSystemClient.clear_system_cache()
                raise IndexMissingError(self.location) from None
            if self._reconnect is not None:
                self._retired.append((time.monotonic(), self._system))
                _load_vector_index(chunks)
            self._client, self._system, self._chunks, self._articles = client, system, chunks, articles

    def _stop_retired(self) -> None:
        """A replaced client holds its own copy of the vector index until it is stopped, once no query can
        still be using it."""
        now = time.monotonic()
        with self._reopening:
            while self._retired and now - self._retired[0][0] > RETIRED_CLIENT_GRACE_S:
                _, system = self._retired.pop(0)
                with contextlib.suppress(Exception):  # stopped already, by another reader of this folder
                    system.stop()

    @_reaching_the_server
    def set_generation(self, generation: str) -> None:
        """Writers call this after a batch commits; readers compare it to know their lexical index is stale."""
        meta = dict(self.articles.metadata or {})
        meta["generation"] = generation
        self.articles.modify(metadata=meta)
