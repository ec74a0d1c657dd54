"""Incremental, idempotent ingestion with one writer.

Per article the write order is: new chunks (upsert, under ids of their own), article record (upsert),
the previous version's chunks (delete). The record, carrying the content hash, is the commit point: readers ignore chunks whose article is not
committed at that hash, and a re-run redoes any article whose record is missing or out of date. After
a batch, orphans are swept and the lexical index is rebuilt and published.

The sentences of each new chunk are embedded and appended to the index's sentence vectors
(`assistant.indexes.sentence_vectors`) before the chunk is written, so a committed chunk always has them. An
index written before they existed gets them on its next ingest (`_backfill_sentences`)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from assistant.core.errors import BadInputError, StoreBusyError
from assistant.core.types import Article, Chunk
from assistant.indexes.embeddings import Embedder
from assistant.indexes.lexical import LexicalIndex, LexicalSide
from assistant.indexes.sentence_vectors import SentenceVectorLog, chunk_sentences
from assistant.indexes.store import VectorStore
from ingest.chunking import Chunker, embedding_input
from ingest.discovery import Discovery, discover, shown
from ingest.ids import FileIds
from ingest.loaders import load_file
from ingest.prune import plan_prune, source_file, stored_file


@dataclass
class IngestReport:
    files: int = 0
    articles_seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    orphans_swept: int = 0
    rejected: list[BadInputError] = field(default_factory=list)
    skipped: list[BadInputError] = field(default_factory=list)  # entries passed over by the discovery policy
    warnings: list[str] = field(default_factory=list)
    prune_note: str | None = None  # why --prune removed less than asked, or nothing
    prune_unconfirmed: bool = False  # nothing pruned because removing a large share was not confirmed
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.orphans_swept)

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "articles_seen": self.articles_seen,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "chunks_embedded": self.chunks_embedded,
            "sentences_embedded": self.sentences_embedded,
            "orphans_swept": self.orphans_swept,
            "rejected": [{"source": e.source, "reason": e.reason} for e in self.rejected],
            "skipped": [{"source": e.source, "reason": e.reason} for e in self.skipped],
            "warnings": self.warnings,
            "prune_note": self.prune_note,
            "prune_unconfirmed": self.prune_unconfirmed,
            "seconds": round(self.seconds, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "articles_per_s": round((self.added + self.updated) / self.seconds, 2) if self.seconds else 0.0,
            "chunks_per_s": round(self.chunks_embedded / self.seconds, 2) if self.seconds else 0.0,
        }


SCAN_REPORT_EVERY = 2000  # chunks read between two progress reports of a scan of the store


class Progress:
    """What the pipeline reports while it works; the CLI draws it with tqdm."""

    def start(self, phase: str, total: int | None) -> None: ...
    def advance(self, articles: int, chunks: int) -> None: ...
    def finish(self) -> None: ...


class IngestPipeline:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        chunker: Chunker,
        lexical: LexicalSide,
        sentences: SentenceVectorLog,
        lock_path: Path,
        dirty_marker: Path,
        batch_chunks: int = 64,
        max_article_chars: int = 0,
    ):
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.lexical = lexical
        self.sentences = sentences
        self.lock_path = lock_path
        # Exists while a write is under way (readers then read the store, not their snapshot's chunk rows);
        # found by the next run, it means a previous one was killed.
        self.dirty_marker = dirty_marker
        self.batch_chunks = batch_chunks
        self.max_article_chars = max_article_chars  # 0: no cap

    @property
    def signature(self) -> str:
        return f"{self.chunker.signature}|{self.embedder.name}"

    @contextmanager
    def writer(self) -> Iterator[None]:
        """One writer at a time: Chroma is thread-safe but not process-safe."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusyError(
                    f"Another ingest is writing to this index (lock {self.lock_path}); wait for it to finish."
                ) from None
            fh.seek(0), fh.truncate(), fh.write(str(os.getpid())), fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ingest(
        self,
        paths: Sequence[Path] | Discovery,
        prune: bool = False,
        progress: Progress | None = None,
        on_reject: Callable[[BadInputError], None] | None = None,
        *,
        reset: bool = False,
        follow_symlinks: bool = False,
        confirm_prune: Callable[[list[str], int], bool] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """`paths`, or what `discover` found in them (the CLI looks first, to create no index for a typo; then
        `follow_symlinks` is not used). `reset` empties the index first, but only once every path was found;
        `confirm_prune(ids, stored)` is asked before removing more than a small share of the index (None: never
        asked)."""
        progress = progress or Progress()
        report = IngestReport()
        started = time.perf_counter()
        with self.writer():
            found = (
                paths
                if isinstance(paths, Discovery)
                else discover(paths, follow_symlinks, index_folder=self.lock_path.parent)
            )
            report.files = len(found.files)
            for problem in found.problems + found.empty_folders():  # an empty folder is likely the wrong one
                self._reject(report, problem, on_reject)
            report.skipped = list(found.skipped)
            for entry in found.skipped:
                self._warn(report, str(entry), on_warning, record=False)
            if reset:
                if not found.complete:
                    raise BadInputError(
                        "--reset", f"nothing was reset, because {found.incomplete_reasons()[0]}"
                    )
                self.dirty_marker.touch()  # readers stop trusting their snapshot before anything goes
                self.store.reset()
            self.store.ensure_embedder(self.embedder.name, self.embedder.dim)
            self._backfill_sentences(report, progress)
            stored = self.store.stored_articles()

            progress.start("Reading", len(found.files))
            pending: list[Article] = []
            source_paths: dict[str, str] = {}  # article id -> its file, resolved (stored with the record)
            seen: dict[str, str] = {}
            read_clean: set[str] = set()
            file_ids = FileIds(
                lambda article_id: stored_file(stored[article_id]) if article_id in stored else None
            )
            for path in found.files:
                loaded = load_file(path)
                for problem in loaded.rejected:
                    self._reject(report, problem, on_reject)
                for warning in loaded.warnings:
                    self._warn(report, warning, on_warning)
                clean = not loaded.rejected
                resolved = shown(os.path.realpath(path))
                for article in loaded.articles:
                    origin = article.origin or shown(path)
                    if loaded.named_after_file:
                        article = replace(article, id=file_ids.id_for(article.id, resolved))
                    if article.id in seen:
                        self._reject(
                            report,
                            BadInputError(
                                origin,
                                f"duplicate article id {article.id!r} (first seen in {seen[article.id]}); kept the first",
                            ),
                            on_reject,
                        )
                        continue
                    if self.max_article_chars and len(article.text) > self.max_article_chars:
                        clean = False
                        self._reject(
                            report,
                            BadInputError(
                                origin,
                                f"the article has {len(article.text):,} characters; the limit is "
                                f"{self.max_article_chars:,} (KILDE_MAX_ARTICLE_CHARS)",
                            ),
                            on_reject,
                        )
                        continue
                    seen[article.id] = origin
                    file_ids.take(article.id, resolved)
                    report.articles_seen += 1
                    source_paths[article.id] = resolved
                    known = stored.get(article.id)
                    if known and known.origin and stored_file(known) != resolved:
                        self._warn(
                            report,
                            f"{origin}: article id {article.id!r} was stored from "
                            f"{source_file(known.origin)}; this file now replaces it",
                            on_warning,
                        )
                    if (
                        known
                        and known.meta.content_hash == article.content_hash
                        and known.signature == self.signature
                    ):
                        report.unchanged += 1
                    else:
                        pending.append(article)
                if clean:
                    read_clean.add(resolved)
                progress.advance(0, 0)
            progress.finish()

            gone: list[str] = []
            if prune:
                plan = plan_prune(stored, set(seen), found, read_clean)
                report.prune_note = plan.blocked
                if (
                    plan.remove
                    and plan.needs_confirmation(len(stored))
                    and confirm_prune is not None
                    and not confirm_prune(plan.remove, len(stored))
                ):
                    report.prune_unconfirmed = True
                    report.prune_note = (
                        f"nothing pruned: removing {len(plan.remove)} of {len(stored)} articles "
                        "was not confirmed"
                    )
                else:
                    gone = plan.remove
                if plan.kept and not plan.blocked:
                    report.prune_note = (report.prune_note or "") + (
                        f"{'; ' if report.prune_note else ''}{plan.kept} articles not seen were kept: their "
                        "source file was not read cleanly or lies outside the given paths"
                    )
            interrupted_before = self.dirty_marker.exists()
            if pending or gone:
                self.dirty_marker.touch()
            self._write(pending, stored, source_paths, report, progress)
            for article_id in gone:
                self.store.delete_article(article_id)
            report.removed = len(gone)
            if report.changed or interrupted_before:
                report.orphans_swept = self._sweep_orphans()
            self._publish_lexical(force=report.changed or interrupted_before)
            self.sentences.mark_complete(self.store.generation())
            self.dirty_marker.unlink(missing_ok=True)
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, article_id: str) -> bool:
        with self.writer():
            if self.store.get_article(article_id) is None:
                return False
            self.dirty_marker.touch()
            complete = self.sentences.complete_at() == self.store.generation()
            self.store.delete_article(article_id)
            self._sweep_orphans()
            self._publish_lexical(force=True)
            if complete:  # removing chunks leaves every remaining one its sentences
                self.sentences.mark_complete(self.store.generation())
            self.dirty_marker.unlink(missing_ok=True)
            return True

    def complete_sentence_vectors(self, progress: Progress | None = None) -> int:
        """Sentence vectors for every stored chunk that lacks them, as an ingest computes them before anything
        else, for a store written by other means (the scale benchmark's synthetic one); returns how many were
        embedded. Afterwards the store counts as complete, so readers stop warning about it."""
        report = IngestReport()
        with self.writer():
            self._backfill_sentences(report, progress or Progress())
            generation = self.store.generation()
            if generation:
                self.sentences.mark_complete(generation)
        return report.sentences_embedded

    # -- steps -----------------------------------------------------------------------------------

    def _write(
        self,
        pending: list[Article],
        stored: dict,
        source_paths: dict,
        report: IngestReport,
        progress: Progress,
    ) -> None:
        chunked = [(article, self.chunker.split(article)) for article in pending]
        progress.start("Embedding", sum(len(chunks) for _, chunks in chunked))
        batch: list[tuple[Article, list[Chunk]]] = []
        for article, chunks in chunked:
            batch.append((article, chunks))
            if sum(len(c) for _, c in batch) >= self.batch_chunks:
                self._write_batch(batch, stored, source_paths, report, progress)
                batch = []
        if batch:
            self._write_batch(batch, stored, source_paths, report, progress)
        progress.finish()

    def _write_batch(self, batch, stored, source_paths, report: IngestReport, progress: Progress) -> None:
        texts = [embedding_input(article, chunk) for article, chunks in batch for chunk in chunks]
        t0 = time.perf_counter()
        parts = []
        for i in range(0, len(texts), self.batch_chunks):  # progress per slice, even inside one long article
            parts.append(self.embedder.embed_passages(texts[i : i + self.batch_chunks]))
            progress.advance(0, len(parts[-1]))
        vectors = np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)
        # Before any chunk of the batch is written: a committed chunk always has its sentences' vectors.
        report.sentences_embedded += self._embed_sentences(
            [sentence for _, chunks in batch for chunk in chunks for sentence in chunk_sentences(chunk.text)]
        )
        report.embed_seconds += time.perf_counter() - t0
        offset = 0
        for article, chunks in batch:
            own = vectors[offset : offset + len(chunks)]
            offset += len(chunks)
            self.store.upsert_chunks(article, chunks, own)
            # the commit point
            self.store.upsert_article(article, self.signature, len(chunks), source_paths.get(article.id))
            keep = {chunk.id for chunk in chunks}
            self.store.delete_chunks([cid for cid in self.store.chunk_ids_of(article.id) if cid not in keep])
            if article.id in stored:
                report.updated += 1
            else:
                report.added += 1
            report.chunks_embedded += len(chunks)
            progress.advance(1, 0)

    def _embed_sentences(self, sentences: Sequence[str]) -> int:
        """Embeds and appends the sentences that have no vector yet; returns how many."""
        missing = self.sentences.missing(sentences)
        # An embedding cache (the sample corpus ships one) answers sentences from a section of their own.
        embed = getattr(self.embedder, "embed_sentences", self.embedder.embed_passages)
        for i in range(0, len(missing), self.batch_chunks):
            part = missing[i : i + self.batch_chunks]
            self.sentences.append(part, embed(part))
        return len(missing)

    def _backfill_sentences(self, report: IngestReport, progress: Progress) -> None:
        """Sentence vectors for the stored chunks that lack them (an index from before they were kept, or
        one whose ingest was killed). Skipped when the last complete ingest left the store as it is now."""
        generation = self.store.generation()
        if generation and self.sentences.complete_at() == generation:
            return
        stored_chunks = self.store.counts()[1]
        if not stored_chunks:
            return
        # Reading a large store back takes minutes (a million chunks: Chroma pages of 2,000), so it reports too.
        progress.start("Checking sentence vectors", stored_chunks)
        lacking: list[tuple[str, list[str]]] = []
        read = 0
        for chunk, _ in self.store.iter_chunks():
            if missing := self.sentences.missing(chunk_sentences(chunk.text)):
                lacking.append((chunk.text, missing))
            read += 1
            if read % SCAN_REPORT_EVERY == 0:
                progress.advance(0, SCAN_REPORT_EVERY)
        progress.advance(0, read % SCAN_REPORT_EVERY)
        progress.finish()
        if not lacking:
            return
        progress.start("Sentence vectors", len(lacking))
        t0 = time.perf_counter()
        step = max(self.batch_chunks // 4, 1)
        for i in range(0, len(lacking), step):
            part = lacking[i : i + step]
            report.sentences_embedded += self._embed_sentences([s for _, missing in part for s in missing])
            progress.advance(0, len(part))
        report.embed_seconds += time.perf_counter() - t0
        progress.finish()

    def _sweep_orphans(self) -> int:
        committed = {aid: s.meta.content_hash for aid, s in self.store.stored_articles().items()}
        orphans = [
            cid for cid, (aid, digest) in self.store.chunk_owners().items() if committed.get(aid) != digest
        ]
        self.store.delete_chunks(orphans)
        return len(orphans)

    def _publish_lexical(self, force: bool) -> None:
        on_disk = LexicalIndex.load(self.lexical.root)
        # A snapshot without chunk rows was written before they were kept: readers would read Chroma.
        if force or on_disk is None or on_disk.generation != self.store.generation() or not on_disk.has_rows:
            self.lexical.rebuild()

    @staticmethod
    def _warn(report: IngestReport, message: str, on_warning, record: bool = True) -> None:
        if record:
            report.warnings.append(message)
        if on_warning:
            on_warning(message)

    @staticmethod
    def _reject(report: IngestReport, problem: BadInputError, on_reject) -> None:
        report.rejected.append(problem)
        if on_reject:
            on_reject(problem)
