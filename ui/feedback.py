"""Thumbs up/down on an answer, appended to a JSONL file that `kilde eval` can read as an eval set.

Each line carries the eval-set keys (`id`, `question`, `language`, `history`, `answerable`, `answers`,
`gold_passages`, `gold_article_ids`; see ../shared/docs/eval-format.md) plus what was shown
(`answer`, `citations`, `filters`, `backend`) and the verdict (`rating`, `comment`). Only a thumbs-up
says the answer was right, so only then are the cited quotes written as `gold_passages`; a thumbs-down
line has `"needs_review": true` and no gold, for a person to complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from assistant.core.errors import BadInputError
from assistant.core.types import Answer, Filters, Turn

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
    if len(comment) > MAX_COMMENT:
        raise BadInputError(
            "comment", f"the comment is {len(comment)} characters; the limit is {MAX_COMMENT}"
        )
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
    """Appends one JSON object per line; safe for the threads of one server process.

    A record is written whole or not at all: a failed write (a full disk) is cut back off, and a fragment
    left by a crash is removed before the next append. One vote counts per answer per client."""

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
            votes = self._known_votes()
            if key in votes:
                return False
            self._write_whole(line)
            votes.add(key)
            return True

    def _known_votes(self) -> set[str]:
        if self._votes is None:
            self._votes = set()
            if self.path.exists():
                repair_tail(self.path)
                with self.path.open(encoding="utf-8", errors="replace") as handle:
                    for text in handle:
                        try:
                            self._votes.add(self.vote_key(json.loads(text)))
                        except (ValueError, AttributeError):
                            continue
        return self._votes

    def _write_whole(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and not _ends_with_newline(fd, size):
                os.close(fd)
                fd = -1
                repair_tail(self.path)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
                size = os.fstat(fd).st_size
            view = memoryview(line)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                os.ftruncate(fd, size)  # never leave a fragment for the next record to join
                from assistant.indexes.storage import StorageError, as_storage_error

                raise as_storage_error(exc, str(self.path.parent)) or StorageError(
                    f"The feedback could not be saved: {exc.strerror or exc}"
                ) from None
        finally:
            if fd >= 0:
                os.close(fd)


def _ends_with_newline(fd: int, size: int) -> bool:
    return os.pread(fd, 1, size - 1) == b"\n"


def repair_tail(path: Path) -> int:
    """Cut an unfinished last line (a write cut short) off the file; returns the bytes removed."""
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if not size:
            return 0
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        end = size
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            block = handle.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        handle.truncate(keep)
        return size - keep
