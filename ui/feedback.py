"""Thumbs up/down on an answer, appended to a JSONL file that `kilde eval` can read as an eval set.

Each line carries the eval-set keys (`id`, `question`, `language`, `history`, `answerable`, `answers`,
`gold_passages`, `gold_article_ids`; see /work/shared/docs/eval-format.md) plus what was shown
(`answer`, `citations`, `filters`, `backend`) and the verdict (`rating`, `comment`). Only a thumbs-up
says the answer was right, so only then are the cited quotes written as `gold_passages`; a thumbs-down
line has `"needs_review": true` and no gold, for a person to complete.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from assistant.core.errors import BadInputError
from assistant.core.types import Answer, Filters, Turn

RATINGS = ("up", "down")
MAX_COMMENT = 2000


def feedback_record(answer: Answer, history: Sequence[Turn], rating: str, comment: str = "",
                    filters: Filters | None = None, client: str | None = None) -> dict:
    if rating not in RATINGS:
        raise BadInputError("rating", f"must be one of {RATINGS}, got {rating!r}")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise BadInputError("comment", f"the comment is {len(comment)} characters; the limit is {MAX_COMMENT}")
    now = datetime.now(UTC)
    digest = hashlib.sha256(f"{now.isoformat()}\0{answer.question}\0{answer.answer}".encode()).hexdigest()[:10]
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
    """Appends one JSON object per line; safe for the threads of one server process."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
