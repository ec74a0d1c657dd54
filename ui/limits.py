"""The per-client rate of questions, shared by every face (chat, widget, API, OpenAI endpoint, MCP)."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """A sliding one-minute window of questions per client key. Thread-safe; lives in the app, not the module."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> int | None:
        """Like `check`, but records nothing: None if a question from `key` would be allowed now."""
        if self.per_minute <= 0:
            return None
        now = self.clock()
        with self._lock:
            waits = []
            for part in key.split("|"):
                recent = [t for t in self._hits.get(part, ()) if now - t < 60.0]
                if len(recent) >= self.per_minute:
                    waits.append(max(1, int(60.0 - (now - recent[0])) + 1))
            return max(waits) if waits else None

    def check(self, key: str) -> int | None:
        """Record a question from `key`; None if allowed, else the seconds until the next one is. A key of
        several parts joined by `|` (a session and its client address) must be within the limit on each."""
        if self.per_minute <= 0:
            return None
        now = self.clock()
        with self._lock:
            parts = [self._hits.setdefault(part, deque()) for part in key.split("|")]
            for hits in parts:
                while hits and now - hits[0] >= 60.0:
                    hits.popleft()
            waits = [
                max(1, int(60.0 - (now - hits[0])) + 1) for hits in parts if len(hits) >= self.per_minute
            ]
            if waits:
                return max(waits)
            for hits in parts:
                hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients
                for k in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60.0]:
                    del self._hits[k]
            return None
