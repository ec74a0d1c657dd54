"""Opaque server-side sessions for auth mode `session`: the browser holds only a random id."""

from __future__ import annotations

import secrets
import threading
import time

from starlette.datastructures import Headers

SESSION_COOKIE = "kilde_session"
SESSION_IDLE_S = 12 * 3600


class SessionStore:
    """Opaque server-side sessions for auth mode `session`."""

    def __init__(self, idle_s: float = SESSION_IDLE_S, clock=time.monotonic):
        self.idle_s = idle_s
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def new(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._seen[token] = self.clock()
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
