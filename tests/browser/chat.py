"""Page helpers for driving the chat and the widget (same markup, different element-id prefixes)."""

from __future__ import annotations

ANSWERED = ".kilde-bot.kilde-answered, .kilde-bot.kilde-notfound"


def open_chat(target, url: str):
    """Load the chat at `url` and wait until it is interactive (works for a page or a frame)."""
    target.goto(url)
    target.wait_for_selector("textarea", state="visible")


def ask(scope, question: str, prefix: str = "kilde") -> None:
    """Type a question, press Enter, and wait for the finished answer (scope: a page or a frame)."""
    before = scope.locator(ANSWERED).count()
    box = scope.locator(f"#{prefix}-question textarea")
    box.fill(question)
    box.press("Enter")
    scope.locator(ANSWERED).nth(before).wait_for(state="visible")


def last_answer(scope):
    return scope.locator(ANSWERED).last
