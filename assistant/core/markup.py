"""Patterns for markup that must never reach an answer or a prompt as live markup."""

from __future__ import annotations

import re

# An active element with its content, up to its closing tag or the end of the text.
ACTIVE_ELEMENT = re.compile(
    r"<(script|style|iframe|object|svg|form)\b.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL
)
# Chat-template control tokens of the common model families.
CHAT_TOKENS = re.compile(r"<\|[^|>]{0,40}\|>|\[/?INST\]|<<\s*/?SYS\s*>>|</?s>", re.IGNORECASE)
TAG = re.compile(r"</?[A-Za-z][^<>]{0,500}>")


def without_tags(text: str, gap: str = "") -> str:
    """`text` without its active elements (with their content) and tags, each replaced by `gap`."""
    return TAG.sub(gap, ACTIVE_ELEMENT.sub(gap, text))
