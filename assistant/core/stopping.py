"""A caller's word that the answer it asked for is no longer wanted (its client cancelled the call).

The answer is computed in a worker thread, which Python cannot stop from outside: the thread looks at the `Stop`
between its steps, and a wait on the model's next words ends as soon as the stop is given, so the answering slot
it holds is given back then, not when the model has written to its end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Stopped(Exception):
    """Raised in the answering thread once its `Stop` is given; the caller that gave it answers nothing."""


class Stop:
    def __init__(self) -> None:
        self._given = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def give(self) -> None:
        with self._lock:
            if self._given.is_set():
                return
            self._given.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def check(self) -> None:
        if self._given.is_set():
            raise Stopped

    def on_give(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from the thread that gives the stop) once it is given, at once if it has been;
        returns what unregisters it."""
        with self._lock:
            if not self._given.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def _forget(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
