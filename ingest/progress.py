"""Progress of a long ingest, shown as a tqdm bar on a terminal."""

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
            self.bar.set_postfix_str(f"{self.articles / elapsed:.1f} articles/s, {self.chunks / elapsed:.1f} chunks/s")

    def finish(self) -> None:
        if self.bar:
            self.bar.close()
            self.bar = None
