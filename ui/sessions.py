"""Opaque server-side sessions for auth mode `session`: the browser holds only a random id."""

from __future__ import annotations

import secrets
import threading
import time

from starlette.datastructures import Headers

from ui.limits import RateLimiter

SESSION_COOKIE = "kilde_session"
SESSION_IDLE_S = 12 * 3600
MAX_SESSIONS = 50_000
NEW_SESSIONS_PER_MINUTE = 20  # per client address: a page load or two a minute, not a session per question


class SessionStore:
    """Opaque server-side sessions for auth mode `session`: bounded in number, expired ones swept, and at
    most `per_peer_minute` new ones a minute for one client address."""

    def __init__(
        self,
        idle_s: float = SESSION_IDLE_S,
        clock=time.monotonic,
        max_sessions: int = MAX_SESSIONS,
        per_peer_minute: int = NEW_SESSIONS_PER_MINUTE,
    ):
        self.idle_s = idle_s
        self.clock = clock
        self.max_sessions = max_sessions
        self._seen: dict[str, float] = {}
        self._minted = RateLimiter(per_peer_minute, clock=clock)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def new(self, peer: str = "?") -> str | None:
        """A new session id, or None when this address minted too many lately or the store is full."""
        if self._minted.check(f"peer:{peer}") is not None:
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            if len(self._seen) >= self.max_sessions:
                self._seen = {t: seen for t, seen in self._seen.items() if now - seen <= self.idle_s}
                if len(self._seen) >= self.max_sessions:
                    return None
            self._seen[token] = now
        return token

    def touch(self, token: str | None) -> bool:
        if not token:
            return False
        now = self.clock()
        with self._lock:
            seen = self._seen.get(token)
            if seen is None or now - seen > self.idle_s:
                self._seen.pop(token, None)
                return False
            self._seen[token] = now
            return True


def cookies_of(headers: Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in headers.get("cookie", "").split(";"):
        if "=" in part:
            name, value = part.split("=", 1)
            out[name.strip()] = value.strip()
    return out
