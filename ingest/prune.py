"""What `kilde ingest --prune` may remove.

A stored article is removed only when it was not seen in this run and its source file (the article's
recorded origin, without a JSONL `:line` or JSON `[i]` suffix) either
- was read in this run without a single rejection, and so no longer holds the article, or
- no longer exists, and lies inside a given path that was walked completely.
Nothing is pruned when any given path is missing, unreadable, rejected or holds no readable file.
Articles from files outside the given paths, from files that failed to load, and from files skipped by
the discovery policy stay. Files are compared resolved: a record's `source_path` (its origin resolved when it
was stored), not its origin's name, which is relative to the folder that ingest ran in; only a record from before
`source_path` was kept is taken to name its file from the current folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ingest.discovery import Discovery, shown

CONFIRM_SHARE = 0.10  # removing more than this share of the index (and more than one article) asks first
_RECORD_SUFFIX = re.compile(r"(?::\d+|\[\d+\])$")


@dataclass
class PrunePlan:
    remove: list[str] = field(default_factory=list)
    kept: int = 0  # not seen, but their file could not be confirmed to have dropped them
    blocked: str | None = None  # why nothing is pruned

    def needs_confirmation(self, stored: int) -> bool:
        return len(self.remove) > max(1, CONFIRM_SHARE * stored)


def source_file(origin: str | None) -> str:
    return _RECORD_SUFFIX.sub("", origin or "")


def stored_file(known) -> str:
    """The file a stored article came from, resolved ("" where the record names none); a record from before
    `source_path` was kept has only its origin, as the ingest that wrote it named it (relative to the folder it
    ran in, taken to be this one)."""
    if known.source_path or not known.origin:
        return known.source_path or ""
    return shown(os.path.realpath(source_file(known.origin)))


def _under(path: str, roots: list[str]) -> bool:
    absolute = os.path.abspath(path)
    return any(absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def plan_prune(stored: dict, seen: set[str], found: Discovery, read_clean: set[str]) -> PrunePlan:
    """`stored`: id -> StoredArticle; `seen`: ids read in this run; `read_clean`: the files that loaded with no
    rejection, resolved and shown."""
    if not found.complete:
        problems = found.incomplete_reasons()
        reasons = "; ".join(problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return PrunePlan(blocked=f"nothing pruned, because not every given path was read: {reasons}{more}")
    discovered = {shown(os.path.realpath(f)) for f in found.files}
    roots = found.roots + [shown(os.path.realpath(root)) for root in found.roots]
    plan = PrunePlan()
    for article_id, record in stored.items():
        if article_id in seen:
            continue
        source = stored_file(record)
        dropped = source in read_clean  # read without a rejection, and the article was not in it
        gone = source not in discovered and _under(source, roots) and not os.path.lexists(source)
        if source and (dropped or gone):
            plan.remove.append(article_id)
        else:
            plan.kept += 1
    return plan
