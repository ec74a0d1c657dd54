"""Which files an ingest run reads, and a name for everything it does not read.

Policy (docs/RELIABILITY.md, "Round two"):
- A path named on the command line is read as given; a missing one, or one that is not a regular file or
  folder, is a problem, and a run with a problem prunes nothing.
- Inside a folder, a symbolic link is followed only when its target lies inside one of the given paths,
  unless `follow_symlinks`; a folder is never walked twice (link loops).
- Dangling links, FIFOs, sockets and devices are skipped and named; a folder that cannot be listed is a
  problem. Hidden entries, README-like files, unknown suffixes and Kilde's indexes (the one written:
  `kilde ingest .` where the data directory is `./data`; another: a folder holding `ingest.lock` beside
  `chroma/` or `lexical/`) are not articles and pass quietly.
- Names are shown safely: bytes that are not UTF-8 are decoded as cp1252 (old Norwegian file names),
  control characters are written as `\\xNN`, so a name can be stored, printed and compared.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.config import INGEST_LOCK
from assistant.core.errors import BadInputError
from assistant.core.surrogates import LONE_SURROGATE

SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")
# Documentation that sits beside articles in a folder is not an article (named explicitly, it is loaded).
NOT_ARTICLES = re.compile(
    r"^(readme|license|licence|notice|changelog|contributing|cases)(\.[a-z]+)?$", re.IGNORECASE
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown(value: str | os.PathLike) -> str:
    """A file name as Kilde stores and prints it: valid UTF-8, no control characters."""
    text = os.fspath(value)
    if LONE_SURROGATE.search(text):  # bytes that were not UTF-8, kept by Python as lone surrogates
        try:
            raw = os.fsencode(text)
        except UnicodeEncodeError:  # a surrogate that did not come from the file system
            raw = text.encode("utf-8", "replace")
        for encoding in ("utf-8", "cp1252", "latin-1"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    problems: list[BadInputError] = field(
        default_factory=list
    )  # given paths or folders that could not be read
    skipped: list[BadInputError] = field(default_factory=list)  # entries passed over by policy, each named
    empty: list[str] = field(default_factory=list)  # given folders holding no file Kilde reads
    roots: list[str] = field(default_factory=list)  # absolute given paths, as shown
    listed: int = (
        0  # files found, each time it was found: a folder whose files were all named already is not empty
    )
    _listed: set[str] = field(default_factory=set, repr=False)

    def add_file(self, path: Path) -> None:
        # A file named twice (`a.txt a.txt`, a relative and an absolute path, a file and its folder) is read once.
        self.listed += 1
        key = os.path.abspath(path)
        if key not in self._listed:
            self._listed.add(key)
            self.files.append(path)

    @property
    def complete(self) -> bool:
        """Every given path was found, walked without an error, and held something to read."""
        return not self.problems and not self.empty

    def empty_folders(self) -> list[BadInputError]:
        return [
            BadInputError(name, f"no files Kilde reads in this folder (it reads {', '.join(SUFFIXES)})")
            for name in self.empty
        ]

    def incomplete_reasons(self) -> list[str]:
        return [str(p) for p in [*self.problems, *self.empty_folders()]]


def is_article_name(name: str) -> bool:
    return Path(name).suffix.lower() in SUFFIXES and not name.startswith(".") and not NOT_ARTICLES.match(name)


def is_kilde_index(folder: Path) -> bool:
    """A data directory Kilde has written (an older one beside the corpus, a copy): its snapshot files are JSON,
    and each would be a rejection."""
    return (folder / INGEST_LOCK).is_file() and any(
        (folder / name).is_dir() for name in ("chroma", "lexical")
    )


def discover(
    paths: Iterable[Path], follow_symlinks: bool = False, index_folder: Path | None = None
) -> Discovery:
    """Files to load, recursively and in a stable order; never those under `index_folder` (the data directory,
    whose snapshot files are JSON: each would be a rejection on every run)."""
    paths = list(paths)
    found = Discovery(roots=[shown(os.path.abspath(p)) for p in paths])
    real_roots = [os.path.realpath(p) for p in paths]
    # (device, inode) of each folder walked -> files and problems found under it, once walked
    seen_dirs: dict[tuple[int, int], int] = {}
    if index_folder is not None:
        try:
            st = os.stat(index_folder)
            seen_dirs[(st.st_dev, st.st_ino)] = 0  # as if walked already, finding nothing
        except OSError:  # not made yet: the first ingest creates it after this walk
            pass
    for path in paths:
        name = shown(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            kind = "a dangling symbolic link" if path.is_symlink() else "no such file or directory"
            found.problems.append(BadInputError(name, kind))
            continue
        except OSError as exc:
            found.problems.append(BadInputError(name, f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            walked = seen_dirs.get((st.st_dev, st.st_ino))
            if walked is not None:  # walked already, inside a folder named before it (`corpus corpus/2024`)
                if not walked:
                    found.empty.append(name)
                continue
            before = (found.listed, len(found.problems))
            _walk(path, found, real_roots, follow_symlinks, seen_dirs)
            if (found.listed, len(found.problems)) == before:
                found.empty.append(name)
        elif stat.S_ISREG(st.st_mode):
            if path.suffix.lower() in SUFFIXES:
                found.add_file(path)
            else:
                found.problems.append(
                    BadInputError(
                        name,
                        f"unsupported file type {path.suffix or '(none)'}; Kilde reads {', '.join(SUFFIXES)}",
                    )
                )
        else:
            found.problems.append(BadInputError(name, "not a regular file or folder"))
    return found


def _inside(real: str, roots: list[str]) -> bool:
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _walk(
    folder: Path, found: Discovery, roots: list[str], follow: bool, seen: dict[tuple[int, int], int]
) -> None:
    try:
        st = folder.stat()
    except OSError as exc:
        found.problems.append(BadInputError(shown(folder), f"cannot list this folder: {exc.strerror or exc}"))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return
    seen[key] = 0
    before = (found.listed, len(found.problems))
    _walk_entries(folder, found, roots, follow, seen)
    seen[key] = found.listed - before[0] + len(found.problems) - before[1]


def _walk_entries(
    folder: Path, found: Discovery, roots: list[str], follow: bool, seen: dict[tuple[int, int], int]
) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        found.problems.append(BadInputError(shown(folder), f"cannot list this folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        name = shown(path)
        try:
            link = entry.is_symlink()
            if link:
                real = os.path.realpath(path)
                if not os.path.exists(real):
                    found.skipped.append(BadInputError(name, "skipped: a dangling symbolic link"))
                    continue
                if not follow and not _inside(real, roots):
                    if entry.is_dir() or is_article_name(entry.name):
                        found.skipped.append(
                            BadInputError(
                                name,
                                "skipped: a symbolic link out of the given paths (use --follow-symlinks)",
                            )
                        )
                    continue
            mode = os.stat(path).st_mode
        except OSError as exc:
            found.problems.append(BadInputError(name, f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(mode):
            if not is_kilde_index(path):
                _walk(path, found, roots, follow, seen)
        elif not is_article_name(entry.name):
            continue
        elif stat.S_ISREG(mode):
            found.add_file(path)
        else:
            found.skipped.append(
                BadInputError(name, "skipped: not a regular file (a FIFO, socket or device)")
            )
