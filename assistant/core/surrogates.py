"""Lone surrogates: what Python keeps of bytes that are not UTF-8 (argv, file names) or of a JSON `\\ud800`
escape. They are not text: no UTF-8 writer (embedder, store, JSON reply, terminal) accepts one."""

import json
import re

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def holds_lone_surrogate(value) -> bool:
    """Whether a value parsed from JSON holds a lone surrogate in any string or key, at any depth (Python's json
    module reads a `\\ud800` escape into one). A value nested deeper than Python recurses raises RecursionError."""
    return bool(LONE_SURROGATE.search(json.dumps(value, ensure_ascii=False)))
