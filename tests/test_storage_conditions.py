"""A full disk and a read-only data directory, for real: a small tmpfs in a private mount namespace (needs
root or user namespaces, as tests/test_cli_offline.py does). Each command answers with one line naming
the folder; read commands work on a read-only index; an ingest cut short by a full disk completes once
space is freed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.testing.corpus import DEMO_QUESTION_NB, DISTRACTORS, SEED_ID
from assistant.testing.servers import subprocess_env

KILDE = str(Path(sys.executable).with_name("kilde"))


def _can_mount() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
        check=False,
        capture_output=True,
    )
    return probe.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and tmpfs mounts (root)"),
]


def _run_in_namespace(tmp_path: Path, index: Path, cache: Path, body: str) -> Path:
    """Runs `body` (sh) with $MNT a 40 MB tmpfs holding a copy of `index`; results are written to $OUT."""
    out = tmp_path / "out"
    out.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f"""
set -u
mount -t tmpfs -o size=40m tmpfs "$MNT"
cp -a "$INDEX/." "$MNT/"
k() {{ name=$1; shift; KILDE_DATA_DIR="$MNT" "$KILDE" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.rc"; }}
{body}
"""
    env = subprocess_env(
        MNT=str(mnt),
        OUT=str(out),
        INDEX=str(index),
        KILDE=KILDE,
        KILDE_CACHE_DIR=str(cache),
        HOME=str(tmp_path),
    )
    subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, check=True, timeout=900)
    return out


def _one_clear_line(out: Path, name: str, words: str) -> str:
    err = (out / f"{name}.err").read_text()
    assert int((out / f"{name}.rc").read_text()) != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("kilde: ") and words in err, err
    return err


def test_a_full_disk_gives_one_line_per_command_and_ingest_completes_after(tmp_path, built_index):
    body = """
dd if=/dev/zero of="$MNT/filler" bs=1M count=100 2>/dev/null
k ingest ingest "$NEWS" --no-progress
k stats stats --json
k ask ask "$QUESTION"
rm "$MNT/filler"
k again ingest "$NEWS" --no-progress --json
k stats_after stats --json
"""
    news = tmp_path / "news.json"  # three short articles: enough to need the disk, quick to embed
    news.write_text(
        json.dumps(
            [
                {
                    "id": f"ny-{i}",
                    "title": f"Ny sak {i}",
                    "text": f"Ny sak {i}. " + "Ferja er innstilt "
                    "i dag på grunn av sterk vind, og Bastø Fosen ber reisende følge med. " * 3,
                }
                for i in range(3)
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    os.environ["NEWS"] = str(news)
    os.environ["QUESTION"] = DEMO_QUESTION_NB
    try:
        out = _run_in_namespace(tmp_path, built_index.data_dir, built_index.cache_dir, body)
    finally:
        os.environ.pop("NEWS"), os.environ.pop("QUESTION")
    for name in ("ingest", "ask"):
        _one_clear_line(out, name, "is full")
    # `stats` reads the summary of the last finished ingest and needs no space, unless the cut ingest left its
    # unfinished mark: then it asks the store, which cannot open on a full disk.
    if int((out / "stats.rc").read_text()) == 0:
        assert json.loads((out / "stats.out").read_text())["articles"] == DISTRACTORS + 1
    else:
        _one_clear_line(out, "stats", "is full")
    assert int((out / "again.rc").read_text()) == 0, (out / "again.err").read_text()
    again = json.loads((out / "again.out").read_text())
    stats = json.loads((out / "stats_after.out").read_text())
    assert stats["articles"] == again["store"]["articles"] > 25


def test_a_read_only_index_answers_read_commands_and_refuses_writes_in_one_line(tmp_path, built_index):
    body = """
mount -o remount,ro "$MNT"
k stats stats --json
k ask ask "$QUESTION" --json
k show show "$SEED" --json
k ingest ingest "$INDEX" --no-progress
k remove remove "$SEED"
"""
    os.environ["QUESTION"] = DEMO_QUESTION_NB
    os.environ["SEED"] = SEED_ID
    try:
        out = _run_in_namespace(tmp_path, built_index.data_dir, built_index.cache_dir, body)
    finally:
        os.environ.pop("QUESTION"), os.environ.pop("SEED")
    for name in ("stats", "ask", "show"):
        assert int((out / f"{name}.rc").read_text()) == 0, (out / f"{name}.err").read_text()
    assert json.loads((out / "stats.out").read_text())["articles"] == 25
    assert json.loads((out / "ask.out").read_text())["citations"][0]["article_id"] == SEED_ID
    for name in ("ingest", "remove"):
        _one_clear_line(out, name, "cannot be written")
