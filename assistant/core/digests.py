"""The SHA-256 digests the commands that write Kilde's model files record beside them (`models.json`,
`reader.json`), checked when a file is loaded: a file of the right size and shape but other content (a value
edited, another run's file, two files swapped) loaded without a word, and some aborted the process."""

from __future__ import annotations

import hashlib
from pathlib import Path

from assistant.core.errors import ConfigError


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def restore_or_rebuild(rebuild: str, record: str | None = None) -> str:
    """What to do about a shipped model file Kilde cannot use: put it back, or rebuild it with `rebuild` (a command,
    as it is written in a message), which writes `record`, the file that records its digest, with it."""
    writes = f", which writes {record} with it" if record else ""
    return (
        "restore the shipped files (reinstall Kilde, or `git checkout -- assistant/models/` in a clone) or rebuild "
        f"with {rebuild}{writes}"
    )


def check_recorded(path: Path, recorded: object, record: Path, way_out: str) -> None:
    """Raise a ConfigError when `path`'s SHA-256 is not `recorded` (the digest `record` holds for it). A record
    that holds no digest for the file (one written before digests were) is not checked. `way_out`: what to do."""
    if recorded is None:
        return
    if not isinstance(recorded, str):
        raise ConfigError(
            f"{record} records the SHA-256 of {path.name} as {recorded!r}, no digest: {way_out}"
        )
    actual = file_sha256(path)
    if actual != recorded.lower():
        raise ConfigError(
            f"model file {path} is not the file {record} records (its SHA-256 is {actual[:12]}…, the record's "
            f"{recorded[:12]}…): it was altered, or is another run's file; {way_out}"
        )
