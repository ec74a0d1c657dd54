"""The feedback file stays valid JSONL whatever happens to a write, and one client's vote on one answer
counts once (docs/RELIABILITY.md, "Round two", items 7 and 11)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from assistant.core.types import Answer, Citation
from assistant.testing.corpus import ROOT
from ui.feedback import FeedbackLog, feedback_record


def _answer(text: str = "Partene skal yte bistand [1].") -> Answer:
    citation = Citation(
        n=1,
        article_id="sak",
        title="Sak",
        date=None,
        source=None,
        url=None,
        chunk_id="sak#0",
        quote="Partene skal yte bistand.",
        start=0,
        end=25,
        score=0.9,
    )
    return Answer(
        question="Hva lover partene?",
        answer=text,
        answerable=True,
        language="nb",
        citations=(citation,),
        sentences=(),
        retrieved=(),
        timings_ms={},
        backend="extractive",
    )


def _lines(path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
    ]  # each line valid JSON


def test_a_fragment_left_by_a_cut_write_is_removed_before_the_next_record(tmp_path):
    path = tmp_path / "feedback.jsonl"
    log = FeedbackLog(path)
    assert log.append(feedback_record(_answer(), (), "up", client="a"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "fb-half", "question": "Hva')  # what a full disk left behind
    assert FeedbackLog(path).append(feedback_record(_answer(), (), "down", client="b"))
    assert [r["client"] for r in _lines(path)] == ["a", "b"]


def test_one_vote_per_answer_per_client(tmp_path):
    path = tmp_path / "feedback.jsonl"
    log = FeedbackLog(path)
    saved = [log.append(feedback_record(_answer(), (), "up", client="session:abc")) for _ in range(100)]
    assert saved.count(True) == 1
    assert log.append(feedback_record(_answer(), (), "up", client="session:def"))
    assert log.append(feedback_record(_answer("Et annet svar [1]."), (), "up", client="session:abc"))
    assert not FeedbackLog(path).append(feedback_record(_answer(), (), "down", client="session:abc"))
    assert len(_lines(path)) == 3


def _can_mount() -> bool:
    return (
        bool(shutil.which("unshare"))
        and subprocess.run(
            ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
            check=False,
            capture_output=True,
        ).returncode
        == 0
    )


@pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and tmpfs mounts (root)")
def test_a_write_on_a_full_disk_leaves_no_fragment(tmp_path):
    """A real full file system: a 1 MB tmpfs filled to the last few hundred bytes."""
    program = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from assistant.indexes.storage import StorageError
        from assistant.core.types import Turn
        from tests.test_feedback_log import _answer
        from ui.feedback import FeedbackLog, feedback_record
        mnt = Path(sys.argv[1])
        path = mnt / "feedback.jsonl"
        log = FeedbackLog(path)
        log.append(feedback_record(_answer(), (), "up", client="a"))
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            os.close(fd)
        try:
            big = (Turn("user", "h" * 20000),)  # more than the page the file's tail has free
            log.append(feedback_record(_answer(), big, "up", client="b"))
            print("written")
        except StorageError as exc:
            print("refused:", exc)
        (mnt / "filler").unlink()
        log.append(feedback_record(_answer(), (), "up", client="d"))
        print(path.read_text())
    """)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f'mount -t tmpfs -o size=1m tmpfs "$1" && exec "{sys.executable}" -c "$2" "$1"'
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(mnt), program],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    status, _, content = run.stdout.partition("\n")
    assert status.startswith("refused:") and "is full" in status, run.stdout
    assert [json.loads(line)["client"] for line in content.strip().splitlines()] == ["a", "d"]
