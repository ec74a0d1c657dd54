"""The real assistant, held: each `ask` (as /api/ask and the OpenAI face call it) waits until the test releases it,
so a test can fill every answering slot and see what the next question gets."""

import threading


class HeldAssistant:
    def __init__(self, inner, release: threading.Event):
        self._inner = inner
        self._release = release
        self.entered = threading.Event()

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def ask(self, request):
        self.entered.set()
        self._release.wait(120)
        return self._inner.ask(request)
