"""Progress of a long ingest: a tqdm bar on a terminal, plain lines at least every 10 s elsewhere."""

from __future__ import annotations

import sys
import time


class TqdmProgress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.articles = 0
        self.chunks = 0
        self.t0 = time.perf_counter()

    def start(self, phase: str, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        unit = "file" if phase == "Reading" else "chunk"
        self.bar = tqdm(total=total, desc=phase, unit=unit, file=sys.stderr, dynamic_ncols=True)
        self.articles = self.chunks = 0
        self.t0 = time.perf_counter()

    def advance(self, articles: int, chunks: int) -> None:
        if not self.bar:
            return
        self.articles += articles
        self.chunks += chunks
        self.bar.update(chunks if self.bar.unit == "chunk" else 1)
        if self.bar.unit == "chunk":
            elapsed = max(time.perf_counter() - self.t0, 1e-9)
            self.bar.set_postfix_str(
                f"{self.articles / elapsed:.1f} articles/s, {self.chunks / elapsed:.1f} chunks/s"
            )

    def finish(self) -> None:
        if self.bar:
            self.bar.close()
            self.bar = None


class LineProgress:
    """When the output is not a terminal (make, CI, a log file): one plain line at least every
    `interval_s` seconds while work goes on, and one when a phase ends."""

    def __init__(self, stream=None, interval_s: float = 10.0, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.clock = clock
        self.phase = ""
        self.total: int | None = None
        self.done = 0
        self.articles = 0
        self.started = self.last = clock()

    def start(self, phase: str, total: int | None) -> None:
        self.phase, self.total, self.done, self.articles = phase, total, 0, 0
        self.started = self.last = self.clock()
        self._line("started")

    def advance(self, articles: int, chunks: int) -> None:
        self.articles += articles
        self.done += chunks if self.phase != "Reading" else 1
        if self.clock() - self.last >= self.interval_s:
            self._line("")

    def finish(self) -> None:
        self._line("done")

    def _line(self, note: str) -> None:
        self.last = now = self.clock()
        unit = "files" if self.phase == "Reading" else "chunks"
        of = f"/{self.total}" if self.total is not None else ""
        rate = self.done / max(now - self.started, 1e-9)
        text = f"{self.phase}: {self.done}{of} {unit}"
        if self.phase != "Reading" and self.done:
            text += f", {self.articles} articles, {rate:.1f} chunks/s"
        print(f"kilde: {text}" + (f" ({note})" if note else ""), file=self.stream, flush=True)


def progress_for(stream, enabled: bool):
    """A bar on a terminal, plain lines elsewhere, nothing when disabled."""
    if not enabled:
        return TqdmProgress(False)
    return TqdmProgress(True) if stream.isatty() else LineProgress(stream)
