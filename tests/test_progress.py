"""Ingest progress when the output is not a terminal: plain lines, at least one every ten seconds."""

from __future__ import annotations

import io

from ingest.progress import LineProgress, TqdmProgress, progress_for


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_line_at_least_every_ten_seconds_while_embedding():
    out, clock = io.StringIO(), Clock()
    progress = LineProgress(out, interval_s=10, clock=clock)
    progress.start("Embedding", 300)
    for _ in range(30):  # 30 batches of 10 chunks, 4 s each
        clock.now += 4
        progress.advance(1, 10)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "kilde: Embedding: 0/300 chunks (started)"
    assert lines[-1].startswith("kilde: Embedding: 300/300 chunks, 30 articles") and lines[-1].endswith(
        "(done)"
    )
    assert len(lines) - 2 == 10  # 120 s of work: a line every 12 s (the first advance after 10 s)


def test_a_terminal_gets_the_bar_and_a_pipe_gets_lines():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress_for(Terminal(), True), TqdmProgress)
    assert isinstance(progress_for(io.StringIO(), True), LineProgress)
    assert not progress_for(io.StringIO(), False).enabled
