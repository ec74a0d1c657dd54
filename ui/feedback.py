"""Thumbs up/down on an answer, appended to a JSONL file that `kilde eval` can read as an eval set.

Each line carries the eval-set keys (`id`, `question`, `language`, `history`, `answerable`, `answers`,
`gold_passages`, `gold_article_ids`; see ../shared/docs/eval-format.md) plus what was shown
(`answer`, `citations`, `filters`, `backend`) and the verdict (`rating`, `comment`). Only a thumbs-up
says the answer was right, so only then are the cited quotes written as `gold_passages`; a thumbs-down
line has `"needs_review": true` and no gold, for a person to complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from assistant.core.errors import BadInputError, KildeError, TextTooLongError
from assistant.core.questions import check_text
from assistant.core.types import Answer, Filters, Turn

log = logging.getLogger("kilde.feedback")

RATINGS = ("up", "down")
MAX_COMMENT = 2000


def feedback_record(
    answer: Answer,
    history: Sequence[Turn],
    rating: str,
    comment: str = "",
    filters: Filters | None = None,
    client: str | None = None,
) -> dict:
    if rating not in RATINGS:
        raise BadInputError("rating", f"must be one of {RATINGS}, got {rating!r}")
    comment = (comment or "").strip()
    check_text("comment", comment)  # no UTF-8 writer takes a lone surrogate: refused, not a traceback
    if len(comment) > MAX_COMMENT:
        raise TextTooLongError("comment", "comment", len(comment), MAX_COMMENT)
    now = datetime.now(UTC)
    digest = hashlib.sha256(f"{now.isoformat()}\0{answer.question}\0{answer.answer}".encode()).hexdigest()[
        :10
    ]
    good = rating == "up"
    return {
        "id": f"fb-{now.strftime('%Y%m%dT%H%M%S')}-{digest}",
        "question": answer.question,
        "language": answer.language,
        "history": [{"role": turn.role, "content": turn.content} for turn in history],
        "answerable": answer.answerable,
        "answers": [],
        "gold_passages": [c.quote for c in answer.citations] if good and answer.answerable else [],
        "gold_article_ids": sorted({c.article_id for c in answer.citations}) if good else [],
        "needs_review": not good,
        "rating": rating,
        "comment": comment,
        "answer": answer.answer,
        "citations": [asdict(c) for c in answer.citations],
        "filters": asdict(filters or Filters()),
        "backend": answer.backend,
        "client": client,
        "created": now.isoformat(timespec="seconds"),
    }


class FeedbackLog:
    """Appends one JSON object per line; safe for the threads of one server process, and for several processes
    writing one file (two servers on one data directory): each append holds an exclusive `flock` on the file.

    A record is written whole or not at all: a failed write (a full disk) is cut back off, and a fragment
    left by a crash is removed before the next append, under the lock, so a record another process is still
    writing is never taken for one. A file that cannot be read or written (a folder in its place, a read-only
    disk) is a `StorageError`, never an `OSError`. One vote counts per answer per client."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._votes: set[str] | None = None

    @staticmethod
    def vote_key(record: dict) -> str:
        what = json.dumps(
            [record.get("client"), record.get("question"), record.get("answer"), record.get("history")],
            ensure_ascii=False,
        )
        return hashlib.sha256(what.encode("utf-8")).hexdigest()

    def append(self, record: dict) -> bool:
        """False when this client already rated this answer (the record is not written)."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        key = self.vote_key(record)
        with self._lock:
            try:
                votes = self._known_votes()
                if key in votes:
                    return False
                self._write_whole(line)
            except OSError as exc:
                raise self._not_saved(exc) from None
            votes.add(key)
            return True

    def _not_saved(self, exc: OSError) -> KildeError:
        """One line for whoever runs the server, naming this file, the cause and the fix; the data directory's
        line (`as_storage_error`) speaks of ingest. The chat tells the visitor its own words (ui/handlers.py)."""
        from assistant.indexes.storage import StorageError, disk_fault

        cause = exc.strerror or type(exc).__name__
        fix = {
            "full": " The disk is full: free some space.",
            "read-only": f" It cannot be written: make {self.path.parent} writable.",
        }.get(disk_fault(exc) or "", "")
        message = f"The feedback could not be saved to {self.path} ({cause}); answering is not affected.{fix}"
        log.warning("%s", message)
        return StorageError(message)

    def _known_votes(self) -> set[str]:
        if self._votes is None:
            votes = set()
            if self.path.exists():
                # A fragment (a cut write, or a record another process is writing now) is no JSON and is skipped.
                with self.path.open(encoding="utf-8", errors="replace") as handle:
                    for text in handle:
                        try:
                            votes.add(self.vote_key(json.loads(text)))
                        except (ValueError, AttributeError):
                            continue
            self._votes = votes
        return self._votes

    def _write_whole(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
            size = os.fstat(fd).st_size
            if size and not _ends_with_newline(fd, size):
                size = _cut_fragment(fd, size)
            view = memoryview(line)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                os.ftruncate(fd, size)  # never leave a fragment for the next record to join
                raise
        finally:
            os.close(fd)


def _ends_with_newline(fd: int, size: int) -> bool:
    return os.pread(fd, 1, size - 1) == b"\n"


def _cut_fragment(fd: int, size: int) -> int:
    """Cut an unfinished last line (a write cut short) off the open file; returns the size kept."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    else:
        keep = 0
    os.ftruncate(fd, keep)
    return keep


def repair_tail(path: Path) -> int:
    """Cut an unfinished last line (a write cut short) off the file; returns the bytes removed."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if not size or _ends_with_newline(fd, size):
            return 0
        return size - _cut_fragment(fd, size)
    finally:
        os.close(fd)
