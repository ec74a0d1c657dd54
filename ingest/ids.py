"""Article ids a user can print, store and fetch: no control characters, valid UTF-8, bounded length; and the ids
of articles named after their file, kept apart when two files share a name."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from ingest.discovery import shown

MAX_ID_CHARS = 200  # well under the 512 that GET /api/articles/{id} accepts


def safe_id(given: str) -> str:
    """Control characters become `\\xNN`, undecodable bytes are decoded as cp1252; an id longer than
    MAX_ID_CHARS keeps its start and gains a digest of the whole, so two long ids stay apart."""
    text = shown(given.strip())
    if len(text) <= MAX_ID_CHARS:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{text[: MAX_ID_CHARS - 17]}~{digest}"


def file_id_choices(name_id: str, file: str) -> list[str]:
    """The ids an article named after `file` (resolved) may take, in order: its name (`notat`), its name and its
    folder's (`notat~b`), its name and a digest of its whole path (`notat~3f0c…`), which no other file shares."""
    folder = shown(os.path.basename(os.path.dirname(file)))
    digest = hashlib.sha256(file.encode("utf-8")).hexdigest()[:12]
    choices = [name_id, safe_id(f"{name_id}~{folder}") if folder else name_id, safe_id(f"{name_id}~{digest}")]
    return list(dict.fromkeys(choices))


class FileIds:
    """Ids for the articles named after their file (a .txt or .md file, an .html page without an address of its
    own). A file keeps the id it was stored under; a new one takes its name, unless another file holds that id,
    stored or read earlier in the run, then the next of `file_id_choices`. So a name held by one file keeps its
    id, two files of one name in two folders land as two articles, in one run or two, and a second run changes
    nothing. An id whose file is gone (moved, or deleted) is free: a file of its name takes it over."""

    def __init__(self, stored_file: Callable[[str], str | None]):
        # id -> the file the stored article came from, resolved ("" where not known); None: no such article
        self._stored_file = stored_file
        self._taken: dict[str, str] = {}  # id -> the file that took it in this run

    def take(self, article_id: str, file: str) -> None:
        """Record that an article of `file` (named after it or not) has `article_id` in this run."""
        self._taken.setdefault(article_id, file)

    def id_for(self, name_id: str, file: str) -> str:
        choices = file_id_choices(name_id, file)
        for choice in choices:  # the id this file holds already
            if self._stored_file(choice) == file and self._taken.get(choice, file) == file:
                return choice
        for choice in choices:
            if choice in self._taken:
                if self._taken[choice] == file:  # the same file read twice: the run says so
                    return choice
                continue
            holder = self._stored_file(choice)
            if holder is None or (holder and not os.path.lexists(holder)):
                return choice
        return choices[-1]
