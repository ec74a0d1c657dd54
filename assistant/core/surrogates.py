"""Lone surrogates: what Python keeps of bytes that are not UTF-8 (argv, file names) or of a JSON `\\ud800`
escape. They are not text: no UTF-8 writer (embedder, store, JSON reply, terminal) accepts one."""

import re

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
