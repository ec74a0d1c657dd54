"""Bounded waits on a model: a first-token deadline, a total deadline and a limit on the silence between
chunks, each its own setting; retries only where a retry cannot pile onto a request still running.

The HTTP client alone cannot tell these apart (its read timeout is one number for the first byte and
every later one), and a stream of text that the post-check strips keeps it busy forever. So the stream
is read in a worker thread and the answerer waits on a queue with the deadline that applies now."""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from assistant.answering.failures import DeadlinePassed, model_busy
from assistant.core.config import Settings
from assistant.core.stopping import Stop, Stopped

log = logging.getLogger("kilde.generative")

_END = object()
_STOPPED = object()  # the caller's `Stop` was given


class TimedStream:
    """Iterate `open_stream()` with deadlines. Call `shown()` once visible answer text has come out of
    the post-check: until then the first-token deadline applies. Closing the stream (on a deadline, or
    when the reader stops) closes the HTTP response, which tells the server to stop generating. A `stop_signal`
    given (the caller cancelled) ends the wait for the next chunk at once, with `Stopped`; the worker reading the
    response closes it when its next chunk comes."""

    def __init__(
        self, open_stream: Callable[[], Iterator], settings: Settings, stop_signal: Stop | None = None
    ):
        self.open_stream = open_stream
        self.stop_signal = stop_signal
        self.silence_s = settings.llm_timeout_s
        self.first_s = settings.llm_first_token_timeout_s
        self.total_s = settings.llm_total_timeout_s
        self._visible = False

    def shown(self) -> None:
        self._visible = True

    def __iter__(self) -> Iterator:
        items: queue.Queue = queue.Queue()
        stop = threading.Event()

        def pump() -> None:
            stream = None
            try:
                stream = self.open_stream()
                for item in stream:
                    if stop.is_set():
                        break
                    items.put((item, None))
                items.put((_END, None))
            except BaseException as exc:  # handed to the reader, which raises it
                items.put((_END, exc))
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):  # closing an already broken stream
                        close()

        worker = threading.Thread(target=pump, name="kilde-model-stream", daemon=True)
        started = time.monotonic()
        last: float | None = None
        stopping = self.stop_signal
        if stopping is not None:
            stopping.check()  # given before the model was asked: it is not asked
        forget = stopping.on_give(lambda: items.put((_STOPPED, None))) if stopping else lambda: None
        worker.start()
        try:
            while True:
                now = time.monotonic()
                limits = [(started + self.total_s, "total", self.total_s)]
                if not self._visible:
                    limits.append((started + self.first_s, "first_token", self.first_s))
                if last is not None:
                    limits.append((last + self.silence_s, "silence", self.silence_s))
                until, kind, seconds = min(limits)
                try:
                    item, error = items.get(timeout=max(0.0, until - now))
                except queue.Empty:
                    raise DeadlinePassed(kind, seconds) from None
                if error is not None:
                    raise error
                if item is _END:
                    return
                if item is _STOPPED:
                    raise Stopped
                last = time.monotonic()
                yield item
        finally:
            forget()
            stop.set()


def retrying(call: Callable[[], Iterator], settings: Settings, sleep=time.sleep) -> Iterator:
    """Start `call()` and get its first item, retrying a rate limit, a 5xx or a refused connection up
    to `llm_max_retries` times (honouring Retry-After). A timeout is never retried: against a server
    with one slot the retry would only queue behind, or interrupt, the request still running there."""
    import openai

    for attempt in itertools.count():
        try:
            stream = call()
            first = next(stream)
        except StopIteration:
            return iter(())
        except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError) as exc:
            timed_out = isinstance(exc, openai.APITimeoutError)
            if timed_out or attempt >= settings.llm_max_retries:
                raise
            wait = _retry_after(exc) or min(0.5 * 2**attempt, 8.0)
            log.info("model request failed (%s); retry %d in %.1f s", type(exc).__name__, attempt + 1, wait)
            sleep(wait)
            continue
        return itertools.chain([first], stream)
    raise AssertionError("unreachable")


class ModelSlots:
    """At most `n` requests to the model at once (0: no limit). A single-slot server (llama-cpp-python's
    default) interrupts the stream it is running when a second request arrives; with one slot here the
    second question waits its turn instead, for at most the first-token deadline."""

    def __init__(self, n: int, wait_s: float):
        self._slots = threading.BoundedSemaphore(n) if n > 0 else None
        self.wait_s = wait_s

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self._slots is None:
            yield
            return
        if not self._slots.acquire(timeout=self.wait_s):
            raise model_busy(self.wait_s)
        try:
            yield
        finally:
            self._slots.release()


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(max(float(value), 0.0), 30.0) if value is not None else None
    except ValueError:
        return None
