"""Real components, held: each call of one method waits until the test releases it, so a test can fill every
answering slot (the assistant's `ask`, as /api/ask and the OpenAI face call it) or hold a search (the retriever's
`retrieve`) and see what the next request gets."""

import threading


class Held:
    def __init__(self, inner, release: threading.Event, method: str = "ask"):
        self._inner = inner
        self._release = release
        self._method = method
        self.entered = threading.Event()

    def __getattr__(self, name):
        if name == self._method:
            return self._held
        return getattr(self._inner, name)

    def _held(self, *args, **kwargs):
        self.entered.set()
        self._release.wait(120)
        return getattr(self._inner, self._method)(*args, **kwargs)
