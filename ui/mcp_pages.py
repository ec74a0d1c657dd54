"""The pages of `resources/list` in `kilde mcp`: each article, newest first, `MAX_LISTED` a page, and the
`nextCursor` that says where the next page starts.

A page is a place in a keyset listing (date, then id), not an offset, so articles added or deleted between pages
are neither skipped nor repeated; only the page is put in order, not the whole archive for each page
(bench/RESULTS-mcp-pages.md). The cursor's checksum is keyed by the index the server lists (`index_place`), so
every server over that index takes the cursors any of them gave.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
from collections.abc import Iterable
from pathlib import Path

from mcp import MCPError
from mcp.types import INVALID_PARAMS

from assistant.core.config import Settings
from assistant.indexes.store import StoredArticle, VectorStore

MAX_LISTED = 1000  # articles on a page of resources/list, newest first; its nextCursor gives the next
NOT_GIVEN = (
    "Invalid params: params.cursor: not a nextCursor this server gave; send the nextCursor of the page before "
    "as it came, or no cursor for the first page"
)


def listing_key(stored: StoredArticle) -> tuple[str, str]:
    """Where an article stands in `resources/list`, newest first: its date (none: oldest), then its id."""
    return stored.meta.date or "", stored.meta.id


def newest_first(
    stored: Iterable[StoredArticle], after: tuple[str, str] | None, size: int
) -> tuple[list[StoredArticle], bool]:
    """The page of `size` articles that follows the place `after` (None: the first page), and whether more
    follow it. Only the page is put in order (a heap of `size` + 1), not the whole archive for each page."""
    if after is not None:
        stored = (s for s in stored if listing_key(s) < after)
    page = heapq.nlargest(size + 1, stored, key=listing_key)
    return page[:size], len(page) > size


def index_place(store: VectorStore, settings: Settings) -> str:
    """What names the index this server lists, the same for each process that serves it: the data directory's
    resolved path, or the Chroma server's address (as the store names it, without credentials), with the
    collection. The cursors of `resources/list` are keyed by it (`Cursors.of_index`)."""
    where = store.location if settings.chroma_url else str(Path(settings.data_dir).resolve())
    return f"{where}\0{settings.collection}"


class Cursors:
    """The `nextCursor` of `resources/list`: the sort key (date, id) of the last article listed, so the next page
    starts after it even when articles are added or deleted meanwhile (an offset would skip or repeat some),
    with a keyed checksum. The key is drawn from the index's place (`of_index`): every server over the same index
    (a restarted one, another process behind the same address) takes the cursors the others gave, and a rebuilt
    index keeps them, as a place in the newest-first list still means the same. A cursor no server of this index
    gave (garbage, altered, another archive's) is refused. The key is no secret and needs to be none: a cursor
    is only ever a place in the list, never an article, so one crafted to pass is a place as well; its body is
    read strictly all the same."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    @classmethod
    def of_index(cls, place: str) -> Cursors:
        """`place`: what names the index the server lists, the same for every process serving it (the data
        directory's resolved path, or the Chroma server's address, with the collection)."""
        return cls(hashlib.sha256(f"kilde resources/list cursor\0{place}".encode()).digest())

    def give(self, position: tuple[str, str]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()
        return f"{body}.{self.signature(body)}"

    def position(self, cursor: str) -> tuple[str, str]:
        body, _, signature = cursor.rpartition(".")
        if not cursor.isascii() or not hmac.compare_digest(signature, self.signature(body)):
            raise MCPError(INVALID_PARAMS, NOT_GIVEN)
        try:
            place = json.loads(base64.urlsafe_b64decode(body))
        except (ValueError, RecursionError):  # binascii.Error and JSON's errors are ValueErrors
            place = None
        if not (isinstance(place, list) and len(place) == 2 and all(isinstance(x, str) for x in place)):
            raise MCPError(INVALID_PARAMS, NOT_GIVEN)
        return place[0], place[1]

    def signature(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
