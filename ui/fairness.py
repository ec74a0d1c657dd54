"""Fair turns for questions: one client's work cannot starve another's.

Each client (the Gate's client key) has at most one question being answered at a time; its further
questions queue behind it on a FIFO lock of its own, so they never hold one of the `ui_concurrency`
answering slots that other clients' questions wait for. A question that has not got its turn within
`budget_s` is answered 503 `busy` with Retry-After, rather than waiting without end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from assistant.core.errors import StoreBusyError


class Busy(StoreBusyError):
    """No turn within the per-request time budget."""

    retry_after = 5

    def __init__(self, budget_s: float):
        super().__init__(f"Kilde is busy: the question got no turn within {budget_s:g} s; try again shortly.")


class FairTurns:
    def __init__(self, slots: int, budget_s: float):
        self.slots = anyio.CapacityLimiter(max(1, slots))
        self.budget_s = budget_s
        self._clients: dict[str, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[None]:
        """Held while the question is answered (the caller runs it with `limiter=self.slots`-free threads)."""
        lock, users = self._clients.get(client, (None, 0))
        lock = lock or anyio.Lock()
        self._clients[client] = (lock, users + 1)
        deadline = anyio.current_time() + self.budget_s
        try:
            with anyio.move_on_after(self.budget_s) as waited:
                await lock.acquire()
            if waited.cancelled_caught:
                raise Busy(self.budget_s)
            try:
                with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as waited:
                    await self.slots.acquire()
                if waited.cancelled_caught:
                    raise Busy(self.budget_s)
                try:
                    yield
                finally:
                    self.slots.release()
            finally:
                lock.release()
        finally:
            lock, users = self._clients[client]
            if users <= 1:
                del self._clients[client]
            else:
                self._clients[client] = (lock, users - 1)


class EarlyRateLimit:
    """ASGI, inside the Gate: a client over its rate limit gets 429 for POST /api/ask before its body is read
    and parsed, so a client retrying at once with large bodies costs the others almost nothing. The 429 comes
    after `delay_s` (never later than the Retry-After it names): a client that retries as soon as it is
    refused then asks once a second per connection instead of hundreds of times (each refusal costs the server
    a connection and a request head's parsing). A waiting refusal is a sleeping coroutine; a client that
    opens ever more connections is for the proxy in front of Kilde to limit."""

    def __init__(self, app, limiter, delay_s: float = 1.0):
        self.app = app
        self.limiter = limiter
        self.delay_s = delay_s

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope["path"] == "/api/ask":
            from ui.security import CLIENT_KEY, json_body

            key = scope.get("state", {}).get(CLIENT_KEY) or "?"
            wait = self.limiter.peek(key)
            if wait is not None:
                await anyio.sleep(min(self.delay_s, wait))
                wait = self.limiter.peek(key)
            if wait is not None:
                status, body = json_body(
                    429,
                    "rate_limited",
                    f"rate limit: too many questions: the limit is "
                    f"{self.limiter.per_minute} per minute; try again in {wait} s",
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"retry-after", str(wait).encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),  # the unread body is not drained
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
